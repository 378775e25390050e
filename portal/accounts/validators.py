"""Password and username rules beyond Django's.

Passwords: letters and digits (PCI 8.3.6), no reuse of the last four (8.3.7), no context words
(ASVS 6.2.11). Usernames: no generic, shared-looking names (PCI 8.2.1, ASVS 6.3.2).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LetterAndDigitValidator:
    """At least one letter and one digit; any other character is welcome."""

    def validate(self, password: str, user=None) -> None:
        if not any(ch.isalpha() for ch in password) or not any(ch.isdigit() for ch in password):
            raise ValidationError(
                _("Your password must contain at least one letter and one digit."), code="password_letter_digit"
            )

    def get_help_text(self) -> str:
        return _("Your password must contain at least one letter and one digit.")


class PasswordHistoryValidator:
    """The new password differs from the current one and the previous ones kept in history."""

    def validate(self, password: str, user=None) -> None:
        if user is None or not getattr(user, "pk", None):
            return
        depth = settings.PASSWORD_HISTORY_DEPTH
        hashes = list(user.password_history.values_list("password", flat=True)[:depth])
        if not hashes and user.password:
            hashes = [user.password]
        if any(check_password(password, h) for h in hashes):
            raise ValidationError(
                _("You cannot reuse any of your last %(count)d passwords.") % {"count": depth},
                code="password_reused",
            )

    def get_help_text(self) -> str:
        return _("You cannot reuse any of your last %(count)d passwords.") % {"count": settings.PASSWORD_HISTORY_DEPTH}


# --- Context words (ASVS 6.2.11) ---

#: Words of the product and the network: refused in any password, whoever sets it.
PRODUCT_WORDS: tuple[str, ...] = ("merchant", "acquirer", "portal", "unionpay", "银联", "商户")

#: Context words derived from a user (username parts, organisation names) shorter than this are ignored.
MIN_CONTEXT_LENGTH = 4

_SEPARATORS = re.compile(r"[\W_]+")


def squash(text: str) -> str:
    """``text`` compared the way the context rule compares: NFKC (full-width letters become plain),
    case-folded, letters and digits only (spaces and punctuation dropped)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def _fragments(text: str) -> list[str]:
    return [squash(part) for part in _SEPARATORS.split(text) if squash(part)]


def _long_enough(word: str) -> bool:
    return len(word) >= MIN_CONTEXT_LENGTH and not word.isdigit()


#: Legal-form endings of Chinese company names: "金莲贸易有限公司" is also known as "金莲贸易".
CHINESE_LEGAL_SUFFIXES: tuple[str, ...] = ("股份有限公司", "有限责任公司", "有限公司", "分公司", "公司", "集团")


def _name_words(name: str, *, single_words: bool) -> set[str]:
    """The context words of one organisation name (see ``context_words``)."""
    words: set[str] = set()
    whole = squash(name)
    words.add(whole)
    for suffix in CHINESE_LEGAL_SUFFIXES:
        if whole.endswith(suffix):
            words.add(whole[: -len(suffix)])
            break
    every = _fragments(name)
    long_only = [part for part in every if _long_enough(part)]
    for parts in (every, long_only):
        words.add("".join(parts))
        # Every run of two or more consecutive words: "Golden Lotus Trading" → "goldenlotus", "lotustrading".
        for start in range(len(parts)):
            for stop in range(start + 2, len(parts) + 1):
                words.add("".join(parts[start:stop]))
    if single_words:
        words.update(long_only)
    return {w for w in words if _long_enough(w)}


def context_words(
    *,
    username: str = "",
    organisation=None,
    product_words: Iterable[str] = PRODUCT_WORDS,
    single_name_words: bool = False,
) -> list[str]:
    """The words a password of this user may not contain, squashed (see ``squash``), longest first.

    The rule (words derived from the user and the organisation count when they have 4 characters
    or more and are not only digits):

    * the product words, whatever their length (``银联`` and ``商户`` have two characters);
    * the username as a whole and each of its parts between separators (``merchant1.admin`` gives
      ``merchant1admin``, ``merchant1`` and ``admin``);
    * the organisation's code (its digits are the point);
    * the organisation's Chinese and English names, spaces and punctuation ignored: the whole name
      (``Demo Merchant One`` → ``demomerchantone``), every run of two or more consecutive words
      (``demomerchant``, ``merchantone``), the name without its words that are only digits or
      shorter than 4 characters (``Merchant 3`` → ``merchant``), and a Chinese name without its legal
      form (``金莲贸易有限公司`` → ``金莲贸易``). A one-word name is refused as it is (``Alibaba``).
    * ``single_name_words``: also each single word of a multi-word name (``demo`` of ``Demo Merchant
      One``). Off by default: company names are full of common words ("Demo", "Trading", "Shanghai"),
      and the demo data's password (``Demo-pass-2026``) contains the demo organisations' first word.
    """
    words = {squash(w) for w in product_words} - {""}
    if username:
        words.update(w for w in [squash(username), *_fragments(username)] if _long_enough(w))
    if organisation is not None:
        code = squash(organisation.code or "")
        if len(code) >= MIN_CONTEXT_LENGTH:
            words.add(code)
        for name in (organisation.name_zh, organisation.name_en):
            if name:
                words |= _name_words(name, single_words=single_name_words)
    return sorted(words, key=lambda w: (-len(w), w))


def find_context_word(password: str, words: Iterable[str]) -> str | None:
    """The first of ``words`` (squashed) that ``password`` contains once squashed, or None."""
    flat = squash(password)
    return next((word for word in words if word and word in flat), None)


class ContextWordsValidator:
    """Refuses a password that contains a context word: the username, the organisation's code or
    names, or a product word (rule: ``context_words``). Case, spaces and punctuation do not help:
    ``Demo Merchant One 2026`` and ``u-n-i-o-n-p-a-y-1`` are refused alike."""

    def __init__(self, product_words: Iterable[str] = PRODUCT_WORDS, single_name_words: bool = False):
        self.product_words = tuple(product_words)
        self.single_name_words = single_name_words

    def words_for(self, user=None) -> list[str]:
        organisation = None
        if user is not None and getattr(user, "organisation_id", None):
            organisation = user.organisation
        username = (getattr(user, "username", "") or "") if user is not None else ""
        return context_words(
            username=username,
            organisation=organisation,
            product_words=self.product_words,
            single_name_words=self.single_name_words,
        )

    def validate(self, password: str, user=None) -> None:
        word = find_context_word(password, self.words_for(user))
        if word is not None:
            raise ValidationError(
                _(
                    "Your password must not contain “%(word)s”: leave out your user name, your organisation's "
                    "code and name, and product words such as “merchant” or “UnionPay”."
                ),
                code="password_context_word",
                params={"word": word},
            )

    def get_help_text(self) -> str:
        return _(
            "Your password must not contain your user name, your organisation's code or name, or product words "
            "such as “merchant” or “UnionPay”."
        )


# --- Generic usernames (PCI 8.2.1, 8.2.2; ASVS 6.3.2) ---

#: Names that identify no one: default, role and test names, "sa" and "ops" from the security checklist, and
#: their Chinese counterparts (a username may be written in Chinese).
GENERIC_USERNAME_WORDS: tuple[str, ...] = (
    "admin",
    "administrator",
    "root",
    "sa",
    "sysadmin",
    "superuser",
    "superadmin",
    "test",
    "guest",
    "user",
    "operator",
    "ops",
    "system",
    "support",
    "demo",
    "管理员",
    "测试",
    "用户",
    "访客",
    "操作员",
    "系统",
    "客服",
    "演示",
)

_USERNAME_SEPARATORS = re.compile(r"[.@+_\-\s]+")


def _generic_part(generic: Iterable[str]) -> re.Pattern[str]:
    words = sorted({squash(w) for w in generic}, key=len, reverse=True)
    return re.compile(r"(?:\d|%s)+" % "|".join(re.escape(w) for w in words))


_GENERIC_PART = _generic_part(GENERIC_USERNAME_WORDS)


def is_generic_username(username: str) -> bool:
    """Whether ``username`` is made only of generic words and digits.

    The rule: split the name at ``. @ + - _`` and spaces; it is generic when every part is a run of
    generic words and digits (``admin``, ``Admin1``, ``admin.01``, ``test_user``, ``testuser2``,
    ``root@1``, ``01-guest``) and at least one part holds a word (``100234``, an employee number, is
    not generic). One personal or organisation part makes the name specific enough:
    ``merchant1.admin``, ``zhang.wei.admin`` and ``a.admin`` are accepted. The access review report
    lists every account, so that a person reviews what this rule cannot know.
    """
    parts = [squash(p) for p in _USERNAME_SEPARATORS.split(unicodedata.normalize("NFKC", username))]
    parts = [p for p in parts if p]
    if not parts or all(p.isdigit() for p in parts):
        return False
    return all(_GENERIC_PART.fullmatch(p) for p in parts)


def validate_username_not_generic(username: str) -> None:
    """Raise a ValidationError (code ``username_generic``) for a generic username (``is_generic_username``)."""
    if is_generic_username(username):
        raise ValidationError(
            _(
                "The user name “%(username)s” is generic (like admin, test or user) and identifies no one: "
                "choose a name for one person, for example from their own name."
            ),
            code="username_generic",
            params={"username": username},
        )
