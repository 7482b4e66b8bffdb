"""Lists: membership (values and IP ranges, v4 and v6) at a time, expiry, item checks and CSV import."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from events.schema import ExtensionField, FieldType
from rules.errors import ListError, ListImportError
from rules.lists import NEVER, IpList, ListItem, ListKind, ValueList, disjoint, make_list, read_items, to_us

NOW = datetime(2026, 12, 1, tzinfo=UTC)
T = to_us(NOW)
HOUR = 3_600_000_000


def test_values_are_members_until_they_expire() -> None:
    devices = make_list(
        "blocked_devices",
        "device_id",
        [ListItem("dev-1", "stolen"), ListItem("dev-2", "trial abuse", NOW + timedelta(hours=1))],
    )
    assert isinstance(devices, ValueList)
    assert devices.kind is ListKind.VALUES
    assert devices.contains("dev-1", T)
    assert devices.contains("dev-2", T)
    assert devices.contains("dev-2", T + HOUR - 1)
    assert not devices.contains("dev-2", T + HOUR)  # expired at its expiry, not after
    assert not devices.contains("dev-3", T)
    assert devices.contains("dev-1", 2**62)


def test_ip_lists_hold_addresses_and_ranges_of_both_versions() -> None:
    ips = make_list(
        "blocked_ips",
        "ip",
        [
            ListItem("203.0.113.0/24", "botnet"),
            ListItem("198.51.100.7", "one address"),
            ListItem("2001:db8::/32", "hosting range", NOW + timedelta(days=1)),
        ],
    )
    assert isinstance(ips, IpList)
    assert ips.kind is ListKind.IP
    assert ips.contains("203.0.113.0", T)
    assert ips.contains("203.0.113.255", T)
    assert not ips.contains("203.0.114.0", T)
    assert ips.contains("198.51.100.7", T)
    assert not ips.contains("198.51.100.8", T)
    assert ips.contains("2001:db8:ffff::1", T)
    assert not ips.contains("2001:db8:ffff::1", T + 24 * HOUR)
    assert ips.contains("::ffff:203.0.113.9", T)  # an IPv4-mapped IPv6 address is its IPv4
    assert not ips.contains("not an address", T)


@st.composite
def networks(draw: st.DrawFn) -> tuple[str, int]:
    """A small network (so that random addresses fall in and near them) and its expiry."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(bits - 8, bits))
    base = draw(st.integers(0, 2**10)) << (bits - prefix)
    network = ipaddress.ip_network((base, prefix))
    expiry = draw(st.sampled_from([NEVER, T - HOUR, T, T + HOUR]))
    return str(network), expiry


@settings(max_examples=150, deadline=None)
@given(
    st.lists(networks(), max_size=12, unique_by=lambda n: n[0]),
    st.lists(st.tuples(st.sampled_from([4, 6]), st.integers(0, 2**19)), max_size=30),
    st.sampled_from([T - 2 * HOUR, T - 1, T, T + HOUR - 1, T + HOUR]),
)
def test_ip_membership_equals_a_brute_force_check(
    items: list[tuple[str, int]], probes: list[tuple[int, int]], at_us: int
) -> None:
    listed = [
        ListItem(text, "test", None if expiry == NEVER else NOW + timedelta(microseconds=expiry - T))
        for text, expiry in items
    ]
    ips = make_list("ips", "ip", listed)
    for version, number in probes:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = (
            ipaddress.IPv4Address(number) if version == 4 else ipaddress.IPv6Address(number)
        )
        expected = any(
            address in ipaddress.ip_network(item.value) and at_us < item.expires_us
            for item in listed
            if ipaddress.ip_network(item.value).version == address.version
        )
        assert ips.contains(str(address), at_us) is expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 20), st.integers(0, 5)), max_size=15),
    st.integers(0, 90),
    st.integers(0, 6),
)
def test_disjoint_intervals_keep_the_latest_expiry_covering_each_number(
    spans: list[tuple[int, int, int]], number: int, at: int
) -> None:
    intervals = [(start, start + width, expiry) for start, width, expiry in spans]
    built = disjoint(intervals)
    expected = any(start <= number <= end and at < expiry for start, end, expiry in intervals)
    assert built.holds(number, at) is expected
    assert all(end < following for end, following in zip(built.ends, built.starts[1:], strict=False))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("card_country", "fr", "ISO 3166-1 alpha-2"),
        ("card_bin", "41111", "BIN of 6 to 8 digits"),
        ("ip", "10.0.0.1/8", "did you mean '10.0.0.0/8'?"),
        ("ip", "10.0.0.300", "not an IPv4 or IPv6 address or CIDR range"),
        ("device_id", "", "empty"),
        ("device_id", " dev-1", "spaces around it"),
        ("method_type", "cheque", "not one of method_type's values"),
    ],
)
def test_an_item_is_checked_as_the_contract_checks_its_field(field: str, value: str, says: str) -> None:
    with pytest.raises(ListError, match=says):
        make_list("things", field, [ListItem(value, "test")])


def test_a_card_number_is_refused_without_being_echoed() -> None:
    with pytest.raises(ListError) as caught:
        make_list("cards", "payment_method_id", [ListItem("pm_4111111111111111", "test")])
    assert "4111" not in str(caught.value)
    assert "card number" in str(caught.value)


def test_a_list_is_of_a_text_field_with_a_rule_friendly_name_and_values_given_once() -> None:
    with pytest.raises(ListError, match="not one: use one of"):
        make_list("amounts", "amount", [])
    with pytest.raises(ListError, match="lower snake case"):
        make_list("Blocked-Devices", "device_id", [])
    with pytest.raises(ListError, match="given twice"):
        make_list("devices", "device_id", [ListItem("d", "a"), ListItem("d", "b")])
    with pytest.raises(ListError, match="has no reason"):
        make_list("devices", "device_id", [ListItem("d", " ")])
    with pytest.raises(ListError, match="the reason of 'd' holds what looks like a card number") as caught:
        make_list("devices", "device_id", [ListItem("d", "seen with 4111-1111-1111-1111")])
    assert "4111" not in str(caught.value)
    with pytest.raises(ListError, match="time zone"):
        ListItem("d", "naive", datetime(2026, 1, 1))
    terminals = make_list(
        "blocked_terminals",
        "terminal_id",
        [ListItem("t-9", "skimmer")],
        (ExtensionField("terminal_id", FieldType.KEY),),
    )
    assert terminals.contains("t-9", T)
    assert issubclass(ListError, InputError)


def test_a_change_adds_replaces_and_removes_items_in_a_new_list() -> None:
    ips = make_list("ips", "ip", [ListItem("10.0.0.0/8", "a"), ListItem("192.0.2.1", "b")])
    changed = ips.changed(added=[ListItem("10.0.0.0/8", "until tomorrow", NOW)], removed=["192.0.2.1"])
    assert ips.contains("10.1.2.3", T)  # the original is unchanged
    assert not changed.contains("10.1.2.3", T)
    assert not changed.contains("192.0.2.1", T - HOUR)
    assert changed.contains("10.1.2.3", T - HOUR)
    assert [item.reason for item in changed.items] == ["until tomorrow"]
    with pytest.raises(ListError, match="host bits"):
        ips.changed(added=[ListItem("10.0.0.1/8", "typo")])


# -- CSV import -------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_file_gives_items_with_expiries_in_utc_and_reasons(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "value,expires_at,reason\n"
        "203.0.113.0/24,2026-12-31T23:59:59Z,botnet\n"
        "198.51.100.7,2026-12-31T10:00:00+02:00,\n"
        "\n"
        '2001:db8::/32,,"hosting, range\nover two lines"\n'
        "192.0.2.1,2027-01-01T00:00:00,naive is UTC\n",
    )
    items = read_items(path, "ip", reason="imported 2026-12-01")
    assert [item.value for item in items] == ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32", "192.0.2.1"]
    assert items[0].expires_at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert items[1].expires_at == datetime(2026, 12, 31, 8, tzinfo=UTC)
    assert items[1].reason == "imported 2026-12-01"
    assert items[2].expires_at is None
    assert items[2].reason == "hosting, range\nover two lines"
    assert items[3].expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert make_list("blocked_ips", "ip", items).contains("203.0.113.77", T)


def test_a_csv_file_with_only_values_needs_a_reason_for_all(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffvalue\ndev-1\ndev-2\n")  # a spreadsheet's byte-order mark
    assert [i.reason for i in read_items(path, "device_id", reason="ring 42")] == ["ring 42", "ring 42"]
    with pytest.raises(ListImportError, match="row 1, column reason: empty"):
        read_items(path, "device_id")


def test_csv_problems_name_the_file_the_row_and_the_column_and_nothing_is_imported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "value,expires_at,reason\n"
        "FR,,ok\n"
        "fr,,lower case\n"
        "DE,next week,bad time\n"
        "FR,,again\n"
        "GB,,ok,extra\n"
        "\n"  # a blank line is no record: rows are counted as in the contract's imports
        "US,,card 4111 1111 1111 1111 seen\n"
        ",,\n",
    )
    with pytest.raises(ListImportError) as caught:
        read_items(path, "card_country")
    message = str(caught.value)
    assert message.startswith(f"{path}: 7 problem(s), nothing imported: ")
    assert "row 2, column value: 'fr'" in message
    assert "row 3, column expires_at: 'next week' is not an ISO 8601 time" in message
    assert "row 4, column value: 'FR' repeats row 1" in message
    assert "row 5: 4 cells where the header has 3" in message
    assert "row 6, column reason: holds what looks like a card number" in message
    assert "row 7, column value: is empty" in message
    assert "4111" not in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "the file is empty"),
        ("device,reason\nd,r\n", "the header row must name the columns value"),
        ("value,value\nd,d\n", "each once"),
        ("value,expiry\nd,\n", "found ['value', 'expiry']"),
    ],
)
def test_a_csv_file_without_a_usable_header_is_refused(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ListImportError, match=re.escape(says)):
        read_items(write(tmp_path, text), "device_id", reason="r")


def test_an_unreadable_csv_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("value\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ListImportError, match=r"latin1\.csv: cannot read the list file"):
        read_items(path, "device_id", reason="r")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ListItem(" dev-x", "r"), "has spaces around it"),
        (ListItem("dev-0", "r"), "given twice"),
        (ListItem("dev-y", "4111 1111 1111 1111"), "reason of 'dev-y' holds what looks like a card number"),
        (ListItem("4111111111111111", "r"), "looks like a card number"),
        (ListItem("dev-z", " "), "has no reason"),
    ],
)
def test_a_long_list_checked_a_column_at_a_time_still_names_its_first_problem(
    bad: ListItem, message: str
) -> None:
    items = [ListItem(f"dev-{i}", "bulk") for i in range(2_000)]
    assert len(make_list("long", "device_id", items)) == 2_000
    with pytest.raises(ListError, match=message) as caught:
        make_list("long", "device_id", [*items[:1_000], bad, *items[1_000:]])
    assert "4111" not in str(caught.value)


def test_a_long_ip_list_with_a_bad_range_is_refused() -> None:
    items = [ListItem(f"10.0.{i // 250}.{i % 250}", "bulk") for i in range(2_000)]
    assert make_list("ips", "ip", items).contains("10.0.1.3", 0)
    with pytest.raises(ListError, match="host bits set"):
        make_list("ips", "ip", [*items, ListItem("10.1.0.1/16", "bulk")])
