from __future__ import annotations

from typing import Literal

from argon2 import PasswordHasher

from auth.passwords import Passwords


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


class CountingHasher(PasswordHasher):
    """A real hasher that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


async def test_a_hashed_password_verifies_and_a_wrong_one_does_not() -> None:
    passwords = Passwords(hasher=fast_hasher())

    stored = await passwords.hash("correct horse")

    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert await passwords.verify(stored, "correct horse")
    assert not await passwords.verify(stored, "wrong horse")


async def test_hashes_are_salted() -> None:
    passwords = Passwords(hasher=fast_hasher())

    assert await passwords.hash("same") != await passwords.hash("same")


async def test_an_unknown_user_still_costs_one_argon2_verification() -> None:
    hasher = CountingHasher()
    passwords = Passwords(hasher=hasher)

    assert not await passwords.verify(None, "any password")
    assert hasher.verifications == 1


async def test_a_corrupt_stored_hash_never_verifies() -> None:
    passwords = Passwords(hasher=fast_hasher())

    assert not await passwords.verify("not-a-hash", "anything")
    assert passwords.needs_rehash("not-a-hash")


async def test_hashes_made_with_other_parameters_need_a_rehash() -> None:
    old = await Passwords(hasher=fast_hasher()).hash("pw")
    current = Passwords()

    assert current.needs_rehash(old)
    assert not current.needs_rehash(await current.hash("pw"))
