"""Pure rules of IMAP mailboxes: what an administrator may configure, and which messages
of a folder a poll takes."""
from __future__ import annotations

import pytest

from services.intake.domain import clean_mailbox, uids_to_take
from services.intake.imap import MailboxCipher
from services.kit.errors import ValidationError

GOOD = {"name": "Продажи", "host": "imap.yandex.ru", "login": "sales@firm.ru",
        "password": "secret"}


def test_defaults_follow_the_security_chosen() -> None:
    assert clean_mailbox(GOOD)["port"] == 993
    plain = clean_mailbox({**GOOD, "security": "starttls"})
    assert (plain["port"], plain["folder"], plain["interval_seconds"], plain["user_id"]) == (
        143, "INBOX", 60, None)
    assert clean_mailbox({**GOOD, "user_id": "7"})["user_id"] == 7


@pytest.mark.parametrize(("change", "field"), [
    ({"name": ""}, "name"), ({"host": "imap example"}, "host"), ({"port": "0"}, "port"),
    ({"port": "abc"}, "port"), ({"login": ""}, "login"), ({"password": None}, "password"),
    ({"folder": 'IN"BOX'}, "folder"), ({"move_to": "INBOX"}, "move_to"),
    ({"interval_seconds": "4"}, "interval_seconds"), ({"user_id": "-3"}, "user_id"),
    ({"security": "ssl3"}, "security"),
])
def test_bad_settings_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        clean_mailbox({**GOOD, **change})
    assert refused.value.details["field"] == field
    assert refused.value.details["key"].startswith("mailbox.")


def test_an_empty_password_keeps_the_stored_one() -> None:
    assert "password" not in clean_mailbox({**GOOD, "password": ""}, has_password=True)
    assert clean_mailbox(GOOD, has_password=True)["password"] == "secret"


def test_first_poll_takes_only_unseen_then_everything_above_the_last_uid() -> None:
    assert uids_to_take([], [5, 3], None, [], 50) == [3, 5]
    assert uids_to_take([8, 9, 10], [2], 7, [], 50) == [2, 8, 9, 10]
    assert uids_to_take([8, 9, 10], [], 7, [9], 50) == [8, 10]
    assert uids_to_take([8, 9, 10], [], 7, [], 2) == [8, 9]


def test_passwords_are_encrypted_and_a_changed_secret_reads_nothing() -> None:
    token = MailboxCipher("one").encrypt("пароль")
    assert "пароль" not in token
    assert MailboxCipher("one").decrypt(token) == "пароль"
    assert MailboxCipher("two").decrypt(token) is None


def test_captcha_questions_are_plain_text_with_their_answer() -> None:
    from services.intake.domain import captcha_answer, captcha_question, needs_captcha

    for _ in range(50):
        question, answer = captcha_question()
        words = question.split()
        a, b = int(words[2]), int(words[4].rstrip("?"))
        assert answer == (a + b if words[3] == "плюс" else a - b) and answer >= 0
    assert (captcha_answer(" 12 "), captcha_answer("двенадцать"), captcha_answer(True)) == (
        12, None, None)
    assert (needs_captcha(2, 3), needs_captcha(3, 3), needs_captcha(99, 0)) == (
        False, True, False)
