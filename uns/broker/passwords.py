"""Password hashing for broker users: argon2id through pwdlib, the format broker.yaml stores."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

__all__ = ["DUMMY_HASH", "hash_password", "verify_password"]

_HASHER = PasswordHash((Argon2Hasher(),))

DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$lRWpL6S5P+EZd2fspsw25w$0o6EdxQXJCVLDWbPnUSn96AnWEHu8i49hUM84xQe2jk"
"""A hash no password is known for, with the parameters ``hash_password`` uses: unknown users verify
against it, so a login costs the same whether the user exists or not."""


def hash_password(plain: str) -> str:
    """Hash ``plain`` with argon2id (a fresh salt each call); the result goes in broker.yaml."""
    if not plain:
        raise ValueError("password must not be empty")
    return str(_HASHER.hash(plain))


def verify_password(plain: str, hashed: str) -> bool:
    """Whether ``plain`` matches ``hashed``; a malformed or non-argon2 hash never matches."""
    try:
        return bool(_HASHER.verify(plain, hashed))
    except (UnknownHashError, ValueError):
        return False
