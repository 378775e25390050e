"""Hardening that settings alone promise: Argon2 first, defusedxml under openpyxl."""

import openpyxl.xml
from django.conf import settings
from django.contrib.auth.hashers import get_hasher


def test_argon2_is_the_first_password_hasher():
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert get_hasher("default").algorithm == "argon2"


def test_new_passwords_are_hashed_with_argon2():
    from django.contrib.auth.hashers import make_password

    assert make_password("Some-pass-2026x").startswith("argon2$")


def test_openpyxl_parses_through_defusedxml():
    # openpyxl falls back to the standard library's XML parser silently when defusedxml is missing,
    # which exposes uploaded workbooks to entity-expansion attacks.
    assert openpyxl.xml.DEFUSEDXML is True
