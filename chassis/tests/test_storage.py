"""chassis.storage against a real S3 API server (moto's, `s3_server` of fleetctl.testing, whose
front checks presigned URLs' signatures and expiry as S3 does: see fleetctl.s3_emulator).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aioboto3
import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError
from types_aiobotocore_s3 import S3Client

from chassis.health import run_checks
from chassis.settings import WithObjectStorage, WithServiceIdentity
from chassis.storage import ObjectStore, attachment, object_store
from fleetctl.s3_emulator import S3Endpoint
from fleetctl.testing import eventually

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part, so a multipart upload needs little data


def storage_settings(s3_settings: dict[str, Any], **overrides: Any) -> WithObjectStorage:
    return WithObjectStorage(
        **{"fleet_env": "test", "s3_part_size_bytes": PART, **s3_settings, **overrides}
    )


@pytest.fixture
async def store(s3_settings: dict[str, Any]) -> AsyncIterator[ObjectStore]:
    async with object_store(storage_settings(s3_settings)) as opened:
        yield opened


@pytest.fixture
async def s3(s3_server: S3Endpoint) -> AsyncIterator[S3Client]:
    """The server seen from outside the store."""
    session = aioboto3.Session(
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key=s3_server.secret_access_key,
        region_name=s3_server.region,
    )
    async with session.client("s3", endpoint_url=s3_server.url) as client:
        yield client


async def chunks_of(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def open_uploads(s3: S3Client, bucket: str) -> list[str]:
    answer = await s3.list_multipart_uploads(Bucket=bucket)
    return [upload["UploadId"] for upload in answer.get("Uploads", [])]


async def test_a_small_upload_is_one_object_read_back_whole(
    store: ObjectStore, s3: S3Client
) -> None:
    data = b"id,total\n" + b"".join(f"{n},{n * 3}\n".encode() for n in range(1000))

    stored = await store.upload("exports/small.csv", chunks_of(data, 1000), content_type="text/csv")

    assert stored.key == "exports/small.csv"
    assert stored.size_bytes == len(data)
    assert await store.read("exports/small.csv") == data
    head = await s3.head_object(Bucket=store.bucket, Key="exports/small.csv")
    assert "-" not in head["ETag"]  # one PutObject: a multipart ETag ends in -<parts>
    assert head["ContentType"] == "text/csv"
    assert await open_uploads(s3, store.bucket) == []


async def test_exactly_one_part_of_data_is_still_one_put(store: ObjectStore, s3: S3Client) -> None:
    data = os.urandom(PART)

    stored = await store.upload("exports/one-part.bin", chunks_of(data), content_type="x/y")

    assert stored.size_bytes == PART
    head = await s3.head_object(Bucket=store.bucket, Key="exports/one-part.bin")
    assert "-" not in head["ETag"]


async def test_an_upload_over_one_part_goes_multipart_part_by_part_and_reads_back_identical(
    store: ObjectStore, s3: S3Client
) -> None:
    data = os.urandom(12 * MIB)
    key = "exports/orders.jsonl"
    seen_while_producing: list[int] = []

    async def produce() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(data[: 6 * MIB]):
            yield chunk
        # The store asked for more only after sending what exceeded a part: the first part is
        # in the bucket while the rest of the stream does not exist yet.
        uploads = await s3.list_multipart_uploads(Bucket=store.bucket, Prefix=key)
        (upload,) = uploads["Uploads"]
        parts = await s3.list_parts(Bucket=store.bucket, Key=key, UploadId=upload["UploadId"])
        seen_while_producing.extend(part["Size"] for part in parts["Parts"])
        async for chunk in chunks_of(data[6 * MIB :]):
            yield chunk

    stored = await store.upload(key, produce(), content_type="application/x-ndjson")

    assert seen_while_producing == [PART]
    assert stored.size_bytes == len(data)
    assert await store.read(key) == data
    head = await s3.head_object(Bucket=store.bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB
    assert head["ContentType"] == "application/x-ndjson"
    assert await open_uploads(s3, store.bucket) == []


async def test_a_failing_chunk_source_aborts_the_multipart_upload_and_raises_its_error(
    store: ObjectStore, s3: S3Client
) -> None:
    async def fail_midway() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(os.urandom(6 * MIB)):
            yield chunk
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="the database went away"):
        await store.upload("exports/broken.csv", fail_midway(), content_type="text/csv")

    assert await open_uploads(s3, store.bucket) == []  # no orphan parts
    with pytest.raises(ClientError) as missing:
        await s3.head_object(Bucket=store.bucket, Key="exports/broken.csv")
    assert missing.value.response["Error"]["Code"] == "404"


async def test_a_cancelled_upload_aborts_its_multipart_upload(
    store: ObjectStore, s3: S3Client
) -> None:
    async def stall_after_a_part() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(os.urandom(6 * MIB)):
            yield chunk
        await asyncio.Event().wait()  # a producer that never finishes
        yield b""

    upload = asyncio.create_task(
        store.upload("exports/cancelled.csv", stall_after_a_part(), content_type="text/csv")
    )

    async def part_sent() -> bool:
        return len(await open_uploads(s3, store.bucket)) == 1

    await eventually(part_sent)
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert await open_uploads(s3, store.bucket) == []


async def test_a_presigned_url_downloads_with_plain_http_as_an_attachment(
    store: ObjectStore,
) -> None:
    body = b"id,total\n1,30\n"
    await store.put("exports/2026-12.csv", body, content_type="text/csv")

    url = await store.presigned_url("exports/2026-12.csv", filename="orders 2026-12.csv")

    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert answer.status_code == 200
    assert answer.content == body
    assert answer.headers["content-type"] == "text/csv"
    assert answer.headers["content-disposition"] == 'attachment; filename="orders 2026-12.csv"'


async def test_the_object_without_a_signature_is_refused(
    store: ObjectStore, s3_server: S3Endpoint
) -> None:
    await store.put("exports/private.csv", b"secret,data\n", content_type="text/csv")

    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{s3_server.url}/{store.bucket}/exports/private.csv")

    assert answer.status_code == 403


async def test_a_presigned_url_stops_working_once_its_lifetime_is_over(store: ObjectStore) -> None:
    await store.put("exports/short.csv", b"a,b\n", content_type="text/csv")
    url = await store.presigned_url("exports/short.csv", ttl_seconds=1)

    async with httpx.AsyncClient() as http:
        # Signed with a whole-second X-Amz-Date: it may be refused from 0 to 1 s from now.
        first = await http.get(url)
        assert first.status_code in {200, 403}

        async def refused() -> bool:
            answer = await http.get(url)
            return answer.status_code == 403 and b"Request has expired" in answer.content

        await eventually(refused, timeout=10, interval=0.2)
        fresh = await http.get(await store.presigned_url("exports/short.csv"))
    assert fresh.status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("exports/mine.csv", "exports/theirs.csv"),
        lambda url: url.replace("X-Amz-Expires=300", "X-Amz-Expires=604800"),
        lambda url: url[:-4] + ("0000" if not url.endswith("0000") else "1111"),
    ],
    ids=["another-object", "a-longer-life", "another-signature"],
)
async def test_a_presigned_url_changed_after_signing_is_refused(
    store: ObjectStore, tamper: Any
) -> None:
    for key in ("exports/mine.csv", "exports/theirs.csv"):
        await store.put(key, b"a,b\n", content_type="text/csv")
    url = await store.presigned_url("exports/mine.csv")

    async with httpx.AsyncClient() as http:
        genuine = await http.get(url)
        changed = await http.get(tamper(url))

    assert genuine.status_code == 200
    assert changed.status_code == 403
    assert b"SignatureDoesNotMatch" in changed.content


async def test_a_presigned_url_states_its_lifetime_default_or_asked(store: ObjectStore) -> None:
    default = parse_qs(urlsplit(await store.presigned_url("any/key")).query)
    short = parse_qs(urlsplit(await store.presigned_url("any/key", ttl_seconds=1)).query)

    assert default["X-Amz-Expires"] == ["300"]
    assert short["X-Amz-Expires"] == ["1"]
    assert short["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


@pytest.mark.parametrize("ttl", [0, -5, 7 * 24 * 3600 + 1])
async def test_a_presigned_url_outside_one_second_to_seven_days_is_refused(
    store: ObjectStore, ttl: int
) -> None:
    with pytest.raises(ValueError, match="7 days"):
        await store.presigned_url("any/key", ttl_seconds=ttl)


async def test_presigned_urls_are_signed_for_the_address_clients_download_from(
    s3_settings: dict[str, Any],
) -> None:
    # The same server under another name, as a public address differs from the in-cluster one.
    public = s3_settings["s3_endpoint_url"].replace("127.0.0.1", "localhost")
    settings = storage_settings(s3_settings, s3_presign_endpoint_url=public)
    async with object_store(settings) as store:
        await store.put("exports/public.csv", b"a,b\n", content_type="text/csv")

        url = await store.presigned_url("exports/public.csv")

        assert url.startswith(f"{public}/{store.bucket}/exports/public.csv?")
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).content == b"a,b\n"


def test_the_filename_of_an_attachment_survives_quotes_and_non_ascii_letters() -> None:
    assert attachment("report.csv") == 'attachment; filename="report.csv"'
    assert attachment('r"é.csv') == (
        "attachment; filename=\"r__.csv\"; filename*=UTF-8''r%22%C3%A9.csv"
    )


async def test_the_readiness_check_fails_while_the_bucket_is_missing(
    s3_settings: dict[str, Any],
) -> None:
    settings = storage_settings(s3_settings, s3_create_bucket=False)
    async with object_store(settings) as store:
        check = store.check()
        assert check.name == "object-storage"

        ready, report = await run_checks([check], timeout=5)
        assert not ready
        assert report == {"object-storage": "error: ClientError"}

        await store.ensure_bucket()
        await store.ensure_bucket()  # already there: nothing to do
        assert await run_checks([check], timeout=5) == (True, {"object-storage": "ok"})


def test_an_empty_endpoint_means_aws_own() -> None:
    settings = WithObjectStorage(s3_endpoint_url="", s3_presign_endpoint_url="")

    assert settings.s3_endpoint_url is None
    assert settings.s3_presign_endpoint_url is None


def test_parts_under_s3_minimum_are_refused() -> None:
    with pytest.raises(ValidationError, match="s3_part_size_bytes"):
        WithObjectStorage(s3_part_size_bytes=PART - 1)


def test_the_emulator_secret_key_is_refused_outside_local_development() -> None:
    with pytest.raises(ValidationError, match="S3_SECRET_ACCESS_KEY must be set"):
        WithObjectStorage(fleet_env="production")
    assert WithObjectStorage(fleet_env="production", s3_secret_access_key="from-the-store")


def test_secret_guards_of_several_mixins_all_hold() -> None:
    class Both(WithServiceIdentity, WithObjectStorage):
        pass

    with pytest.raises(ValidationError, match="SERVICE_CLIENT_SECRET must be set"):
        Both(fleet_env="staging", s3_secret_access_key="from-the-store")
    with pytest.raises(ValidationError, match="S3_SECRET_ACCESS_KEY must be set"):
        Both(fleet_env="staging", service_client_secret="from-the-store")
