"""Small exports written by the tests, as a billing system writes them (text): contract or provider names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from events.mapping import TableMapping
from events.problems import ProblemLog
from events.schema import EventKind
from events.sources import Source
from events.validate import Known, Validation, validate_source

#: A card number that passes the Luhn check (a well-known test PAN); it must never appear in any output.
TEST_PAN = "4111111111111111"


def attempts(n: int = 5, start: int = 0) -> pd.DataFrame:
    """``n`` valid attempts, ids ``att-<start>`` onwards, one minute apart, as text."""
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "attempt_id": [f"att-{i}" for i in ids],
            "occurred_at": [f"2025-03-01T10:{i % 60:02d}:00+00:00" for i in ids],
            "account_id": [f"acc-{i % 3}" for i in ids],
            "kind": ["renewal" if i % 2 else "signup" for i in ids],
            "plan_tier": ["standard"] * n,
            "plan_period": ["monthly"] * n,
            "amount": ["12.99"] * n,
            "currency": ["EUR"] * n,
            "payment_method_id": [f"pm_{i:06d}" for i in ids],
            "method_type": ["card"] * n,
            "card_bin": ["411111"] * n,
            "card_funding": ["debit"] * n,
            "card_country": ["DE"] * n,
            "card_exp": ["2027-09"] * n,
            "device_id": [f"dev-{i}" for i in ids],
            "ip": ["203.0.113.7"] * n,
            "ip_country": ["DE"] * n,
            "billing_country": ["DE"] * n,
            "invoice_id": [f"inv-{i}" for i in ids],
            "retry_number": ["0"] * n,
        }
    )


def outcomes(attempt_ids: list[str]) -> pd.DataFrame:
    """One outcome per attempt: approved, except every third declined for insufficient funds."""
    declined = [i % 3 == 2 for i in range(len(attempt_ids))]
    return pd.DataFrame(
        {
            "attempt_id": attempt_ids,
            "occurred_at": ["2025-03-02T00:00:00Z"] * len(attempt_ids),
            "status": ["declined" if d else "approved" for d in declined],
            "decline_code": ["insufficient_funds" if d else None for d in declined],
        }
    )


def fraud_reports(attempt_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "report_id": [f"rep-{i}" for i in range(len(attempt_ids))],
            "attempt_id": attempt_ids,
            "reported_at": ["2025-04-15T08:30:00Z"] * len(attempt_ids),
            "report_type": ["chargeback"] * len(attempt_ids),
        }
    )


def with_value(frame: pd.DataFrame, row: int, column: str, value: Any) -> pd.DataFrame:
    """A copy of ``frame`` with one cell changed (``row`` is 0-based)."""
    changed = frame.copy()
    changed[column] = changed[column].astype(object)
    changed.loc[row, column] = value
    return changed


def validate_frame(
    frame: pd.DataFrame,
    kind: EventKind = EventKind.ATTEMPTS,
    mapping: TableMapping | None = None,
    known: Known | None = None,
) -> Validation:
    """Validate a frame of text as if read from a CSV file."""
    source = Source("export.csv", frame.astype("str").where(frame.notna()), ProblemLog("export.csv"))
    return validate_source(source, kind, mapping or TableMapping(), known)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write as a billing export would: missing values as empty fields."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def provider_attempts(n: int = 4) -> pd.DataFrame:
    """Attempts as the provider of ``events/examples/mapping.example.yaml`` exports them."""
    return pd.DataFrame(
        {
            "TransactionID": [f"T{i:04d}" for i in range(n)],
            "CreatedAt": [f"0{1 + i % 9}/02/2025 10:15:00" for i in range(n)],  # Berlin local time (UTC+1)
            "CustomerID": [f"C{i % 2}" for i in range(n)],
            "ChargeReason": ["NEW" if i == 0 else "RENEW" for i in range(n)],
            "Package": ["Plus"] * n,
            "BillingCycle": ["1M"] * n,
            "AmountCents": ["1299"] * n,
            "PaymentToken": [f"tok_{i}" for i in range(n)],
            "PaymentType": ["CC"] * n,
            "BIN": ["535522"] * n,
            "FundingType": ["C"] * n,
            "IssuerCountry": ["NA"] * n,  # Namibia: must not be read as a missing value
            "CardExpiry": ["2028-01"] * n,
            "DeviceID": [f"D{i}" for i in range(n)],
            "ClientIP": ["2001:db8::1"] * n,
            "IPCountry": ["NA"] * n,
            "BillingCountry": ["NA"] * n,
            "InvoiceNo": [f"I{i}" for i in range(n)],
            "Attempt": ["0" if i % 2 else None for i in range(n)],  # empty: the mapping's default (0)
            "SalesChannel": ["WEB" if i % 2 else None for i in range(n)],
            "ResellerCode": [f"R{i % 2}" for i in range(n)],
            "CampaignCode": ["spring" if i % 2 else None for i in range(n)],
            "InternalNote": ["n/a"] * n,
        }
    )


def provider_outcomes(transaction_ids: list[str]) -> pd.DataFrame:
    n = len(transaction_ids)
    return pd.DataFrame(
        {
            "TransactionID": transaction_ids,
            "RespondedAt": ["2025-02-10T11:00:00"] * n,  # naive: the mapping says Europe/Berlin
            "Result": ["DECLINED" if i % 2 else "OK" for i in range(n)],
            "ReasonCode": ["51" if i % 2 else None for i in range(n)],
        }
    )


#: A card acquirer's mapping: nothing IPTV-shaped; ids, amounts and a currency made by the mapping, and the
#: provider's own typed fields (the extension).
CARD_MAPPING = """\
version: 1
attempts:
  columns:
    occurred_at: TxTime
    account_id: CustomerRef
    payment_method_id: CardToken
    card_bin: Bin
    account_created_at: CustomerSince
  constants: {currency: EUR, method_type: card}
  defaults: {retry_number: 0}
  derive:
    attempt_id: {concat: [TerminalID, TxID], sep: "-"}
    amount: {divide: [AmountCents, 100]}
  attributes:
    terminal_id: {column: TerminalID, type: key, doc: "The merchant's terminal."}
    channel: {column: Channel, type: category, values: [ecom, pos, moto]}
    acquirer_score: {column: Score, type: number}
    card_first_seen_at: {column: CardSeen, type: time}
  values:
    channel: {ECOM: ecom, POS: pos, MOTO: moto}
  timestamps: {format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Paris}
outcomes:
  columns: {occurred_at: AnsweredAt, status: Result, decline_code: Reason}
  derive:
    attempt_id: {concat: [TerminalID, TxID], sep: "-"}
  values:
    status: {A: approved, D: declined}
    decline_code: {'51': insufficient_funds}
  timestamps: {format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Paris}
"""


def card_transactions(n: int = 6, start: int = 0) -> pd.DataFrame:
    """Card transactions as an acquirer exports them: every third a €0 card check, no plan, kind,
    currency or retry columns; the transaction id is unique per terminal only."""
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "TerminalID": [f"T{i % 2}" for i in ids],
            "TxID": [str(1000 + i) for i in ids],
            "TxTime": [f"2025-06-0{1 + i % 9} 14:{i % 60:02d}:00" for i in ids],  # Paris, UTC+2
            "CustomerRef": [f"cust-{i % 4}" for i in ids],
            "CardToken": [f"ctok_{i % 5}" for i in ids],
            "Bin": ["535522"] * n,
            "CustomerSince": ["2021-01-15 09:00:00" if i % 2 else None for i in ids],
            "AmountCents": ["0" if i % 3 == 0 else str(250 + i) for i in ids],
            "Channel": ["ECOM" if i % 2 else "POS" for i in ids],
            "Score": [f"{i / 10:.1f}" for i in ids],
            "CardSeen": ["2024-12-24 18:30:00"] * n,
        }
    )


def card_outcomes(transactions: pd.DataFrame) -> pd.DataFrame:
    """One answer per transaction: approved, except every fourth declined for insufficient funds."""
    declined = [i % 4 == 3 for i in range(len(transactions))]
    return pd.DataFrame(
        {
            "TerminalID": transactions["TerminalID"],
            "TxID": transactions["TxID"],
            "AnsweredAt": transactions["TxTime"],
            "Result": ["D" if d else "A" for d in declined],
            "Reason": ["51" if d else None for d in declined],
        }
    )
