from payments.cards import card_hash, generate_test_pan, luhn_valid, mask_pan

from .conftest import PAN_A


def test_mask_keeps_first_six_and_last_four():
    assert mask_pan(PAN_A) == "622202*********0128"
    assert mask_pan("6222 0212 3456 7890 128") == "622202*********0128"


def test_hash_is_keyed_hmac_of_the_normalised_number(settings):
    first = card_hash(PAN_A)
    assert first == card_hash("6222-0212-3456-7890-128")
    assert len(first) == 64 and PAN_A not in first
    settings.CARD_HASH_KEY = "another key"
    assert card_hash(PAN_A) != first


def test_generated_test_numbers_pass_luhn():
    for _ in range(50):
        pan = generate_test_pan(prefix="625807", length=16)
        assert len(pan) == 16 and pan.startswith("625807") and luhn_valid(pan)
