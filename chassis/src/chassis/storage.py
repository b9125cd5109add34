"""Object storage: files in an S3-compatible bucket (AWS S3, MinIO, moto's server locally).

The fleet keeps files too big or too long-lived for a database row here: the worker's order
exports and reconciliation reports. Two decisions shape the module:

- **Multipart uploads.** An export of 100,000 orders and more is produced as a stream of rows.
  A single PutObject would need all of it at once (in memory, or on a disk a pod may not have),
  so the process would grow with the export. `ObjectStore.upload` sends the stream in parts of
  `S3_PART_SIZE_BYTES` as it comes, holding at most one part: memory stays constant whatever
  the size. S3 assembles the parts only at CompleteMultipartUpload, so no reader ever sees half
  a file; an upload that fails or is cancelled is aborted, so its parts do not linger (stored
  and billed, invisible to listings) in the bucket. Data that fits in one part is one PutObject.
- **Presigned URLs.** Clients download straight from the bucket with a URL that grants one GET
  of one key for a few minutes (`S3_PRESIGN_TTL_SECONDS`), signed with the service's
  credentials: large files never pass through the gateway and a service (their body and time
  limits, their memory), and the bucket stays private, with no public ACL or bucket policy. The
  URL is signed for the address clients reach (`S3_PRESIGN_ENDPOINT_URL`) when it differs from
  the in-cluster one the service calls (SigV4 signs the host, so a URL cannot be re-hosted).

Every call has connect and read timeouts (`S3_TIMEOUT_SECONDS`) and at most two retries
(botocore's standard mode: backoff with jitter, throttling and transient errors only). Path-style
addressing (`endpoint/bucket/key`) works with every S3-compatible server and needs no wildcard
DNS. `object_store(settings)` opens one client for the process and closes it on exit.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from chassis.health import Check
from chassis.logging import get_logger
from chassis.settings import WithObjectStorage

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, GetObjectRequestTypeDef

log = get_logger(__name__)

# SigV4 refuses a presigned URL valid for longer than a week.
MAX_PRESIGN_TTL_SECONDS = 7 * 24 * 3600
# Keys one DeleteObjects call takes at most.
DELETE_BATCH = 1000
_ATTEMPTS = 3  # the first call and two retries
_NOT_FOUND = frozenset({"404", "NoSuchBucket", "NotFound"})
# Aborts of multipart uploads still running after their caller was cancelled.
_aborting: set[asyncio.Future[None]] = set()
_PLAIN = frozenset(string.ascii_letters + string.digits + " !#$%&'()*+,-.:;<=>?@[]^_`{|}~")


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size_bytes: int


def client_config(settings: WithObjectStorage) -> AioConfig:
    """Timeouts, bounded retries and path-style addressing for every call to the bucket."""
    return AioConfig(
        connect_timeout=settings.s3_timeout_seconds,
        read_timeout=settings.s3_timeout_seconds,
        retries={"mode": "standard", "max_attempts": _ATTEMPTS},
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # Checksums only where an operation requires them: the CRC headers botocore adds by
        # default are refused by S3-compatible servers that do not know them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def attachment(filename: str) -> str:
    """`Content-Disposition: attachment` naming `filename` (RFC 6266): a plain ASCII fallback,
    and the exact name UTF-8 encoded for clients that read `filename*`."""
    fallback = "".join(c if c in _PLAIN else "_" for c in filename) or "download"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _NOT_FOUND


class ObjectStore:
    """One bucket, through one client for the whole process (`object_store`)."""

    def __init__(
        self, client: S3Client, settings: WithObjectStorage, *, signer: S3Client | None = None
    ) -> None:
        self.bucket = settings.s3_bucket
        self._client = client
        # Presigns for the address clients download from; no request ever goes through it.
        self._signer = signer or client
        self._region = settings.s3_region
        self._part_size = settings.s3_part_size_bytes
        self._presign_ttl = settings.s3_presign_ttl_seconds

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing: private, as S3 creates every bucket (no ACL
        grant or policy is set). A bucket another replica created meanwhile is fine."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _is_missing(exc):
                raise
        else:
            return
        try:
            if self._region == "us-east-1":  # the one region that refuses a location constraint
                await self._client.create_bucket(Bucket=self.bucket)
            else:
                await self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
        log.info("bucket_created", bucket=self.bucket)

    async def put(self, key: str, body: bytes, *, content_type: str) -> StoredObject:
        """Store `body` under `key` in one PutObject (replacing what was there)."""
        await self._client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
        )
        return StoredObject(key, len(body))

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str
    ) -> StoredObject:
        """Store what `chunks` yields under `key`, holding at most one part in memory (plus the
        chunk being added): a multipart upload once the data exceeds one part, a single
        PutObject otherwise. The object appears whole when the upload completes, or not at all:
        on any failure or cancellation (of the chunks' producer or of a call) the multipart
        upload is aborted, so no part is left behind, and the error is raised again."""
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                # Strictly more than a part: data of exactly one part stays one PutObject.
                while len(buffer) > self._part_size:
                    if upload_id is None:
                        created = await self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self._part_size])
                    del buffer[: self._part_size]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                return await self.put(key, bytes(buffer), content_type=content_type)
            parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            buffer.clear()
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                await self._abort(key, upload_id)
            raise
        return StoredObject(key, size)

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes
    ) -> CompletedPartTypeDef:
        answer = await self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def _abort(self, key: str, upload_id: str) -> None:
        """Abort the multipart upload, even while the task that ran it is being cancelled (a
        second cancellation leaves the abort running on its own)."""

        async def abort() -> None:
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except Exception as exc:
                # The bucket's lifecycle rule for incomplete uploads is the last resort.
                log.warning(
                    "multipart_abort_failed",
                    bucket=self.bucket,
                    key=key,
                    upload_id=upload_id,
                    error=type(exc).__name__,
                )

        task = asyncio.ensure_future(abort())
        _aborting.add(task)  # held until done: a shielded task nobody awaits may be collected
        task.add_done_callback(_aborting.discard)
        await asyncio.shield(task)

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these objects (a missing one is no error), a thousand per call, S3's most;
        raises when S3 reports any it could not remove."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            answer = await self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                msg = (
                    f"{len(errors)} object(s) not deleted, e.g. {first.get('Key')}: "
                    f"{first.get('Code')}"
                )
                raise RuntimeError(msg)

    async def read(self, key: str) -> bytes:
        """The whole object (for small ones: reports, tests; large ones are downloaded by
        clients through `presigned_url`)."""
        answer = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with answer["Body"] as body:
            return await body.read()

    async def presigned_url(
        self, key: str, *, ttl_seconds: int | None = None, filename: str | None = None
    ) -> str:
        """A URL that GETs `key` without credentials for `ttl_seconds` (default
        `S3_PRESIGN_TTL_SECONDS`), at `S3_PRESIGN_ENDPOINT_URL` when set. With `filename`, the
        download is answered `Content-Disposition: attachment` with that name. Signing is local:
        no call to the bucket, and the key need not exist yet."""
        ttl = self._presign_ttl if ttl_seconds is None else ttl_seconds
        if not 0 < ttl <= MAX_PRESIGN_TTL_SECONDS:
            msg = f"a presigned URL lives 1 s to 7 days, not {ttl} s"
            raise ValueError(msg)
        params: GetObjectRequestTypeDef = {"Bucket": self.bucket, "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = attachment(filename)
        return await self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl)

    def check(self, *, critical: bool = True) -> Check:
        """Readiness: the bucket exists and the credentials may reach it (HeadBucket)."""

        async def probe() -> None:
            await self._client.head_bucket(Bucket=self.bucket)

        return Check("object-storage", probe, critical=critical)


@asynccontextmanager
async def object_store(settings: WithObjectStorage) -> AsyncIterator[ObjectStore]:
    """The bucket of `settings`, connected: one client for the process, closed on exit. The
    bucket is created first when `S3_CREATE_BUCKET` asks for it."""
    session = aioboto3.Session(
        aws_access_key_id=settings.s3_access_key_id.get_secret_value(),
        aws_secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        region_name=settings.s3_region,
    )
    config = client_config(settings)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        )
        signer = None
        public = settings.s3_presign_endpoint_url
        if public is not None and public != settings.s3_endpoint_url:
            # Only signs (locally): it never opens a connection.
            signer = await stack.enter_async_context(
                session.client("s3", endpoint_url=public, config=config)
            )
        store = ObjectStore(client, settings, signer=signer)
        if settings.s3_create_bucket:
            await store.ensure_bucket()
        yield store
