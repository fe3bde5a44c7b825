"""Generated passwords (the admin's of ``nimbo up``): random, and never taken for an option
by a command line (no leading '-', which 1 in 64 URL-safe tokens have)."""

from __future__ import annotations

from auth.passwords import generate_password, hash_password, verify_password


def test_generated_passwords_are_distinct_and_never_start_with_a_dash() -> None:
    passwords = {generate_password() for _ in range(2000)}
    assert len(passwords) == 2000
    assert not [p for p in passwords if p.startswith("-")]
    assert all(len(p) == 24 for p in passwords)


def test_a_generated_password_verifies_against_its_hash() -> None:
    password = generate_password()
    assert verify_password(password, hash_password(password))
