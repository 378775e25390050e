"""Phone numbers: normalising and masking."""


def normalise_phone(raw: str) -> str:
    """Strip spaces and dashes; keep a leading +."""
    return "".join(ch for ch in raw.strip() if ch.isdigit() or ch == "+")


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``: the first three and last four digits stay visible."""
    if len(phone) <= 7:
        return "*" * max(len(phone) - 2, 0) + phone[-2:]
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
