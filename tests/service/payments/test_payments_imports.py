"""Statement imports through the running service: matching, re-import, overlapping files,
all-or-nothing refusal, own accounts, the review queue, the inbox folder, two replicas."""
from __future__ import annotations

import io
import logging
import os
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from services.kit.errors import Conflict, ValidationError
from services.payments import models
from services.payments.feeds import Transaction, parse_statement, write_1c_statement
from services.payments.models import ImportJob, Receipt
from services.payments.store import statements as imports
from tests.service.payments.conftest import OUR_ACCOUNT, OWN_FEEDS, Payments
from tests.support import infra

FIXTURE_ACCOUNT = "40702810000000001234"  # the own account of the hand-written 1C files
CLIENT_INN = "7705000001"


def parsed(path: Path) -> list[Transaction]:
    with path.open("rb") as stream:
        return [r for r in parse_statement(stream, path.name) if isinstance(r, Transaction)]


def statement(*txs: Transaction) -> bytes:
    buffer = io.BytesIO()
    write_1c_statement(buffer, txs)
    return buffer.getvalue()


def credit(number: str, amount: str, inn: str, purpose: str, day: date,
           account: str = OUR_ACCOUNT) -> Transaction:
    return Transaction(own_account=account, date=day, number=number, amount=D(amount),
                       direction="credit", payer_name="ООО Плательщик", payer_inn=inn,
                       payer_account="40702810100000000009", payee_name="Мы",
                       payee_inn="7700000000", purpose=purpose)


def outbox_count(payments: Payments, type_: str) -> int:
    with payments.db() as db:
        return int(db.scalar(select(func.count()).select_from(models.outbox)
                             .where(models.outbox.c.type == type_)))


def test_confident_match_records_the_receipt_and_reimport_records_nothing(payments, spy):
    received = spy("payments", "payment_received")
    payments.our_account(FIXTURE_ACCOUNT)
    deal = payments.deal_of_client(CLIENT_INN, manager_id=5)
    invoice = payments.plan(deal, "120000.00", date(2024, 2, 20), invoice_number="1024")
    other = payments.deal_of_client("500100732259")
    instalment = payments.plan(other, "6000.00", date(2024, 2, 15), contract_number="15/2024")

    job = payments.imported(OWN_FEEDS / "1c-cp1251-crlf.txt")
    assert job["status"] == "done", job
    result = job["result"]
    assert {k: result[k] for k in ("records", "credits", "debits", "new", "duplicates",
                                   "ignored", "matched", "review", "unmatched")} == {
        "records": 4, "credits": 2, "debits": 2, "new": 4, "duplicates": 0, "ignored": 2,
        "matched": 1, "review": 1, "unmatched": 0}
    assert result["unknown_accounts"] == [] and result["amount_matched"] == "120000.00"
    [event] = received.wait_for("payment_received")
    assert event["data"]["payment_id"] == invoice["id"]
    assert (event["data"]["source"], event["data"]["amount"], event["data"]["received_on"]) == (
        "bank", "120000.00", "2024-02-16")
    panel = payments.call("deal_payments", deal)
    assert (panel["paid"], panel["outstanding"]) == ("120000.00", "0.00")
    assert panel["receipts"][0]["bank_transaction_id"] is not None
    [waiting] = payments.transactions(status="review")
    assert (waiting.amount, waiting.suggested_payment_id) == (D("5000.50"), instalment["id"])

    again = payments.imported(OWN_FEEDS / "1c-cp1251-crlf.txt")
    assert (again["result"]["new"], again["result"]["duplicates"],
            again["result"]["matched"]) == (0, 4, 0)
    assert len(payments.transactions()) == 4
    assert outbox_count(payments, "payment_received") == 1


def test_a_file_paying_one_client_three_times_is_matched_in_file_order(payments, spy):
    """Each transaction sees the payments the ones before it in the file paid: the named
    invoice first, then the other payment of that amount, then nothing of that amount is
    left and the third goes to review with the payment due near it."""
    received = spy("payments", "payment_received")
    payments.our_account()
    deal = payments.deal_of_client(CLIENT_INN)
    named = payments.plan(deal, "1000.00", date(2024, 3, 1), invoice_number="501")
    later = payments.plan(deal, "1000.00", date(2024, 9, 1))
    near = payments.plan(deal, "700.00", date(2024, 3, 5))
    job = payments.imported(statement(
        credit("1", "1000.00", CLIENT_INN, "Оплата по счету № 501", date(2024, 3, 1)),
        credit("2", "1000.00", CLIENT_INN, "Оплата по договору", date(2024, 3, 2)),
        credit("3", "1000.00", CLIENT_INN, "Оплата по договору", date(2024, 3, 3))))
    assert (job["result"]["matched"], job["result"]["review"]) == (2, 1), job
    first, second, third = payments.transactions()
    assert (first.status, first.suggested_payment_id, first.score) == (
        "matched", named["id"], D("0.97"))
    assert (second.status, second.suggested_payment_id, second.score) == (
        "matched", later["id"], D("0.95"))
    assert (third.status, third.suggested_payment_id, third.candidates) == (
        "review", near["id"], [near["id"]])
    assert sorted(e["data"]["payment_id"] for e in received.wait_for(
        "payment_received", count=2)) == sorted([named["id"], later["id"]])
    assert outbox_count(payments, "payment_received") == 2


def test_a_payment_changed_while_the_file_is_matched_goes_to_review(payments, monkeypatch):
    """The matching reads the open payments, decides, then locks the ones it pays: one
    another transaction changed in between (its version moved) is not paid but left to a
    person, with the reason first; the rest of the file is matched as usual."""
    payments.our_account()
    deal = payments.deal_of_client(CLIENT_INN)
    first = payments.plan(deal, "1000.00", date(2024, 3, 1), invoice_number="601")
    second = payments.plan(deal, "2000.00", date(2024, 4, 1), invoice_number="602")
    locking = imports._changed_meanwhile

    def changed_by_someone_else(work, paid):
        with payments.db() as other:  # commits before the import locks the payments
            other.execute(text("UPDATE planned_payments SET version = version + 1, "
                               "comment = 'edited' WHERE id = :id"), {"id": first["id"]})
            other.commit()
        return locking(work, paid)

    monkeypatch.setattr(imports, "_changed_meanwhile", changed_by_someone_else)
    job = payments.imported(statement(
        credit("1", "1000.00", CLIENT_INN, "Оплата по счету № 601", date(2024, 3, 1)),
        credit("2", "2000.00", CLIENT_INN, "Оплата по счету № 602", date(2024, 4, 1))))
    assert (job["result"]["matched"], job["result"]["review"]) == (1, 1), job
    edited, paid = payments.transactions()
    assert (edited.status, edited.suggested_payment_id, edited.candidates, edited.score) == (
        "review", first["id"], [first["id"]], D("0.99"))
    assert edited.reasons[0] == imports.CHANGED_MEANWHILE
    assert edited.reasons[1:] == [
        f"payer INN {CLIENT_INN} is the client's",
        "amount 1000.00 equals the outstanding 1000.00", "the purpose names invoice 601",
        "paid 0 days from the due date 2024-03-01"]
    assert (paid.status, paid.suggested_payment_id) == ("matched", second["id"])
    with payments.db() as db:
        receipts = db.execute(text("SELECT planned_payment_id FROM receipts")).scalars().all()
        left = db.execute(text("SELECT status, received_amount FROM planned_payments "
                               "WHERE id = :id"), {"id": first["id"]}).one()
    assert receipts == [second["id"]]
    assert (left.status, left.received_amount) == ("planned", D("0.00"))
    assert outbox_count(payments, "payment_received") == 1


def test_overlapping_files_record_each_transaction_once(payments):
    payments.our_account(FIXTURE_ACCOUNT)
    first = parsed(OWN_FEEDS / "1c-cp1251-crlf.txt")
    payments.imported(OWN_FEEDS / "1c-cp1251-crlf.txt")
    later = credit("77", "10.00", "", "Прочее", first[0].date, account=FIXTURE_ACCOUNT)
    # the next day's file repeats two of yesterday's documents
    overlap = payments.imported(statement(first[0], first[2], later), "next.txt")
    assert (overlap["result"]["records"], overlap["result"]["new"],
            overlap["result"]["duplicates"]) == (3, 1, 2)
    assert len(payments.transactions()) == 5


def test_an_entry_listed_twice_in_one_file_is_recorded_once(payments, caplog):
    # a bank reference is unique: the same one twice is one entry on two pages; the first
    # is kept before matching, so writing the file's new rows finds nothing taken
    caplog.set_level(logging.INFO, logger="crm.payments.imports")
    payments.our_account("DE89370400440532013000")
    ntry = ('<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
            "<BookgDt><Dt>2024-01-02</Dt></BookgDt><AcctSvcrRef>REF-1</AcctSvcrRef></Ntry>")
    data = ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:'
            'tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>S</Id><Acct><Id><IBAN>'
            f"DE89370400440532013000</IBAN></Id></Acct>{ntry}{ntry}</Stmt></BkToCstmrStmt>"
            "</Document>").encode()
    job = payments.imported(data, "camt.xml")
    assert job["status"] == "done", job
    assert (job["result"]["records"], job["result"]["new"], job["result"]["duplicates"],
            job["result"]["unmatched"]) == (2, 1, 1, 1)
    assert len(payments.transactions()) == 1
    assert "matching after writing instead" not in caplog.text


def test_a_file_broken_at_the_end_applies_nothing(payments, spy):
    payments.our_account(FIXTURE_ACCOUNT)
    deal = payments.deal_of_client(CLIENT_INN)
    payments.plan(deal, "120000.00", date(2024, 2, 20), invoice_number="1024")
    whole = (OWN_FEEDS / "1c-cp1251-crlf.txt").read_bytes()
    truncated = whole[:whole.rindex("КонецДокумента".encode("cp1251"))]
    job = payments.imported(truncated, "cut.txt")
    assert job["status"] == "failed"
    assert job["error_location"].startswith("line ")
    assert "truncated" in job["error"]
    # what is wrong, as a key the page translates, with the line as a number
    assert job["error_key"] == "statement.line.truncated_section"
    assert job["error_params"]["line"] == int(job["error_location"].split()[1])
    assert isinstance(job["error_params"]["start"], int)
    assert payments.transactions() == []
    assert payments.call("deal_payments", deal)["paid"] == "0.00"
    assert outbox_count(payments, "payment_received") == 0
    # the same money arrives in a good file later: matched then, once
    assert payments.imported(whole)["result"]["matched"] == 1


def test_a_file_that_is_not_a_statement_is_refused_at_upload(payments, storage):
    with pytest.raises(ValidationError) as refused:
        payments.upload(b"%PDF-1.7 not a statement", "invoice.pdf")
    assert refused.value.field == "file"
    assert "not a bank statement" in refused.value.message
    assert list((storage / "uploads").iterdir()) == []  # the refused file is not kept
    with pytest.raises(ValidationError) as empty:
        payments.upload(b"", "empty.txt")
    assert empty.value.field == "file"
    with pytest.raises(ValidationError) as sneaky:
        payments.call("create_import", {"stored_name": "../../etc/passwd", "filename": "x"})
    assert sneaky.value.field == "file"


def test_a_file_over_the_size_limit_is_refused(start_payments, rpc, amqp_uri, session_of,
                                               storage):
    start_payments(STATEMENTS_MAX_BYTES=1000)
    payments = Payments(rpc, amqp_uri, session_of, storage)
    with pytest.raises(ValidationError) as refused:
        payments.upload(OWN_FEEDS / "1c-cp1251-crlf.txt")
    assert refused.value.field == "file" and refused.value.key == "file.too_large"
    assert refused.value.params["max"] == 1000 and "1000" in refused.value.message


def test_credits_to_accounts_not_ours_are_listed_then_matched_once_the_account_is_added(
        payments):
    deal = payments.deal_of_client(CLIENT_INN)
    payment = payments.plan(deal, "120000.00", date(2024, 2, 20), invoice_number="1024")
    job = payments.imported(OWN_FEEDS / "1c-cp1251-crlf.txt")
    assert (job["result"]["foreign_account"], job["result"]["matched"]) == (2, 0)
    assert job["result"]["unknown_accounts"] == [FIXTURE_ACCOUNT]
    listed = payments.call("import_transactions", job["id"], {"status": "foreign_account"})
    assert listed["total"] == 2
    added = payments.call("add_own_account", {"account": "4070 2810 0000 0000 1234"},
                          user_id=2)
    assert added["account"] == FIXTURE_ACCOUNT and added["rematch_job_id"]
    rematch = payments.finished(added["rematch_job_id"])
    assert (rematch["result"]["matched"], rematch["result"]["review"]) == (1, 0)
    assert payments.call("deal_payments", deal)["payments"][0]["id"] == payment["id"]
    assert payments.call("deal_payments", deal)["paid"] == "120000.00"
    with pytest.raises(Conflict):
        payments.call("add_own_account", {"account": FIXTURE_ACCOUNT})
    with pytest.raises(ValidationError) as bad:
        payments.call("add_own_account", {"account": "счёт"})
    assert bad.value.field == "account"


def test_review_queue_confirm_pick_another_split_and_dismiss(payments, spy):
    received = spy("payments", "payment_received")
    payments.our_account()
    deal = payments.deal_of_client("7728168971")
    due = date(2024, 5, 10)
    a = payments.plan(deal, "1000.00", due)
    b = payments.plan(deal, "1000.00", due)
    c = payments.plan(deal, "2500.00", due + timedelta(days=30))
    day = date(2024, 5, 11)
    file = statement(
        credit("1", "1000.00", "7728168971", "Оплата за май", day),  # a or b: a person picks
        credit("2", "1000.00", "7728168971", "Оплата за май", day),
        credit("3", "3500.00", "7728168971", "Оплата по двум счетам", day),
        credit("4", "42.00", "", "Возврат депозита", day))
    job = payments.imported(file)
    assert (job["result"]["review"], job["result"]["unmatched"]) == (3, 1)
    queue = payments.call("review_queue", {})
    assert queue["counts"] == {"review": 3, "unmatched": 1}
    first, second, both, deposit = queue["items"]
    assert {p["id"] for p in first["candidate_payments"]} >= {a["id"], b["id"]}
    assert first["candidate_payments"][0]["deal_name"] == "Сделка"

    with pytest.raises(ValidationError) as unchosen:
        payments.call("resolve_transaction", first["id"], {"action": "confirm"})
    assert unchosen.value.field == "payment_id"
    payments.call("resolve_transaction", first["id"],
                  {"action": "confirm", "payment_id": a["id"]}, user_id=3)
    payments.call("resolve_transaction", second["id"],
                  {"action": "confirm", "payment_id": b["id"]}, user_id=3)
    with pytest.raises(ValidationError) as uneven:
        payments.call("resolve_transaction", both["id"], {"action": "split", "allocations": [
            {"payment_id": c["id"], "amount": "2500.00"},
            {"payment_id": a["id"], "amount": "900.00"}]})
    assert uneven.value.field == "allocations"
    payments.call("resolve_transaction", both["id"], {"action": "split", "allocations": [
        {"payment_id": c["id"], "amount": "2500.00"},
        {"payment_id": a["id"], "amount": "1000.00"}]}, user_id=3)
    with pytest.raises(ValidationError) as no_note:
        payments.call("resolve_transaction", deposit["id"], {"action": "dismiss"})
    assert no_note.value.field == "note"
    payments.call("resolve_transaction", deposit["id"],
                  {"action": "dismiss", "note": "возврат депозита, не оплата"}, user_id=3)
    with pytest.raises(Conflict):
        payments.call("resolve_transaction", deposit["id"], {"action": "dismiss", "note": "x"})

    assert payments.call("review_queue", {})["counts"] == {"review": 0, "unmatched": 0}
    panel = payments.call("deal_payments", deal)
    assert (panel["paid"], panel["outstanding"], panel["credit"]) == (
        "5500.00", "0.00", "1000.00")
    events = received.wait_for("payment_received", 4)
    assert sorted(e["data"]["amount"] for e in events) == [
        "1000.00", "1000.00", "1000.00", "2500.00"]
    assert {e["data"]["user_id"] for e in events} == {3}


def test_cancelled_bank_receipt_puts_the_money_back_in_the_queue(payments):
    payments.our_account(FIXTURE_ACCOUNT)
    deal = payments.deal_of_client(CLIENT_INN)
    payments.plan(deal, "120000.00", date(2024, 2, 20), invoice_number="1024")
    payments.imported(OWN_FEEDS / "1c-cp1251-crlf.txt")
    [receipt] = payments.call("deal_payments", deal)["receipts"]
    with pytest.raises(ValidationError) as bank_amount:
        payments.call("correct_receipt", receipt["id"], {"amount": "1.00", "reason": "x"})
    assert bank_amount.value.field == "amount"
    payments.call("cancel_receipt", receipt["id"], {"reason": "не тот договор"}, user_id=8)
    queue = payments.call("review_queue", {"status": "review"})
    [back] = [t for t in queue["items"] if t["id"] == receipt["bank_transaction_id"]]
    assert back["unallocated"] == "120000.00"
    assert back["reasons"][0].startswith(f"receipt {receipt['id']} was cancelled")


def test_real_statements_import_end_to_end(payments, shared_feeds):
    """Every file in ../shared/data/feeds through the service: credits and debits as the
    file has them, nothing new on a second import, the garbled file refused whole."""
    for account in ("40702810200000000001", "40600000000000000000", "DE89370400440532013000",
                    "NL91ABNA0417164300"):
        payments.our_account(account)
    expected = {  # file: (credits, debits, new on first import)
        "1c-kilylabs-one_day-cp1251.txt": (3, 10, 13),
        "1c-kilylabs-one_day-utf8.txt": (3, 10, 0),  # the same transactions re-encoded
        "1c-odoo-ru-1c_to_kl-min.txt": (0, 0, 0),
        "1c-odoo-ru-kl_to_1c.txt": (0, 1, 1),
        "1c-unact-test.txt": (6, 0, 6),
        "camt053-bsp-001.02.xml": (2, 1, 3),
        "camt053-bsp-duplicate_same_day.xml": (0, 2, 2),
        "camt053-bsp-multicurrency.xml": (1, 2, 3),
        "camt053-bsp-no_namespace.xml": (1, 0, 1),
        "mt940-bsp-sample.mt940": (1, 1, 2),
    }
    names = sorted(p.name for p in shared_feeds.iterdir() if p.suffix != ".md")
    assert set(names) == set(expected) | {"camt053-bsp-garbled_amount.xml"}
    for name in sorted(expected):
        job = payments.imported(shared_feeds / name)
        assert job["status"] == "done", (name, job)
        r = job["result"]
        assert (r["credits"], r["debits"], r["new"]) == expected[name], name
    total = sum(new for _, _, new in expected.values())
    assert len(payments.transactions()) == total
    credits_to_ours = payments.transactions(own_account="40702810200000000001",
                                            direction="credit")
    assert [t.status for t in credits_to_ours] == ["unmatched"] * 3
    assert {t.status for t in payments.transactions(own_account="40700000000000000000")} == {
        "foreign_account"}

    garbled = payments.imported(shared_feeds / "camt053-bsp-garbled_amount.xml")
    assert garbled["status"] == "failed"
    assert (garbled["error_location"], garbled["error"]) == (
        "Stmt[1]/Ntry[1]/Amt", "Stmt[1]/Ntry[1]/Amt: '12..34' is not an amount")
    assert (garbled["error_key"], garbled["error_params"]["location"]) == (
        "statement.element.amount", "Stmt[1]/Ntry[1]/Amt")

    for name in sorted(expected):
        assert payments.imported(shared_feeds / name)["result"]["new"] == 0, name
    assert len(payments.transactions()) == total


def test_inbox_folder_is_imported_and_files_moved(start_payments, rpc, amqp_uri, session_of,
                                                  storage, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    start_payments(STATEMENTS_INBOX_DIR=str(inbox), STATEMENTS_INBOX_SECONDS=0.05,
                   STATEMENTS_INBOX_SETTLE_SECONDS=0)
    payments = Payments(rpc, amqp_uri, session_of, storage)
    payments.our_account(FIXTURE_ACCOUNT)
    (inbox / "vypiska.txt.part").write_bytes(b"still being written")
    (inbox / "vypiska_0216.txt").write_bytes((OWN_FEEDS / "1c-cp1251-crlf.txt").read_bytes())
    (inbox / "notes.txt").write_text("not a statement")
    whole = (OWN_FEEDS / "1c-utf8-lf.txt").read_bytes()
    (inbox / "cut.txt").write_bytes(whole[:len(whole) // 2])

    def settled() -> bool:
        return {p.name for p in (inbox / "processed").glob("*")} == {"vypiska_0216.txt"} and \
            {p.name for p in (inbox / "failed").glob("*")} == {
                "notes.txt", "notes.txt.error.txt", "cut.txt", "cut.txt.error.txt"}
    infra.wait_until(lambda: (inbox / "failed").is_dir() and (inbox / "processed").is_dir()
                     and settled(), timeout=20, message="the inbox files to be imported")
    assert (inbox / "vypiska.txt.part").exists()  # a partial file is left alone
    assert "not a bank statement" in (inbox / "failed" / "notes.txt.error.txt").read_text()
    assert "line" in (inbox / "failed" / "cut.txt.error.txt").read_text()
    assert list((inbox / "processing").iterdir()) == []
    with payments.db() as db:
        jobs = {j.filename: j.status for j in db.scalars(select(ImportJob))}
    assert jobs == {"vypiska_0216.txt": "done", "notes.txt": "failed", "cut.txt": "failed"}
    assert len(payments.transactions()) == 4


def test_two_replicas_import_each_file_once(start_payments, rpc, amqp_uri, session_of,
                                            storage, spy):
    received = spy("payments", "payment_received")
    start_payments()
    start_payments()
    payments = Payments(rpc, amqp_uri, session_of, storage)
    payments.our_account()
    deal = payments.deal_of_client(CLIENT_INN)
    day = date(2024, 6, 3)
    jobs = []
    for i in range(6):
        payments.plan(deal, f"{100 + i}.00", day, invoice_number=f"R-{i}")
        jobs.append(payments.upload(statement(
            credit(str(i), f"{100 + i}.00", CLIENT_INN, f"Оплата по счету № R-{i}", day)),
            f"day{i}.txt"))
    results = [payments.finished(j["id"]) for j in jobs]
    assert [r["result"]["matched"] for r in results] == [1] * 6
    assert len(received.wait_for("payment_received", 6)) == 6
    with payments.db() as db:
        assert db.scalar(select(func.count()).select_from(Receipt)) == 6
    assert outbox_count(payments, "payment_received") == 6


def test_import_runs_in_the_background_with_progress(payments):
    payments.our_account()
    day = date(2024, 7, 1)
    file = statement(*(credit(str(i), f"{i}.00", "", f"Прочее {i}", day)
                       for i in range(1, 4001)))
    job = payments.upload(file, "big.txt")
    assert job["status"] == "queued" and job["size"] == len(file)
    seen = set()

    def finished() -> dict | None:
        current = payments.call("get_import", job["id"])
        if current["progress"]:
            seen.add((current["status"], current["progress"]["phase"]))
        return current if current["status"] == "done" else None
    done = infra.wait_until(finished, timeout=60, interval=0.02, message="the big import")
    assert done["result"]["new"] == 4000 and done["progress"]["percent"] == 100
    assert ("running", "reading") in seen or ("running", "matching") in seen, seen
    # the upload is not kept: deleted just after the job's commit (never before it, so a
    # crash cannot lose a file whose import is not recorded)
    infra.wait_until(lambda: os.listdir(payments.storage / "uploads") == [], timeout=10,
                     message="the upload to be deleted")


def test_lock_conflict_is_a_conflict_not_a_hang(payments):
    payment = payments.plan(601, "10.00", date.today())
    with payments.db() as db:
        db.execute(select(models.PlannedPayment).where(
            models.PlannedPayment.id == payment["id"]).with_for_update())
        with pytest.raises(Conflict) as busy:
            payments.call("mark_received", payment["id"], {})
        assert busy.value.details["field"] == "payment_id"
    assert payments.call("deal_payments", 601)["paid"] == "0.00"
