"""`riskgate rules load` and `riskgate rules export` as a user types them: a file of rules and lists into the
state directory's store (versions with who and why), a refused file naming the rule and the position and
changing nothing, and the round trip through export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.settings import get_settings
from riskgate.cli import app
from serving.store.operations_sqlite import SQLiteOperations

RULES = """\
rules:
  - name: block-stolen-devices
    action: block
    expression: device_id in @stolen_devices
    description: devices seen in card testing
  - name: review-big-foreign
    action: review
    expression: card_country != ip_country and amount > 50
    enabled: false
  - name: allow-staff
    action: allow
    expression: account_id in ('acc-staff-1', 'acc-staff-2')
lists:
  - name: stolen_devices
    field: device_id
    reason: card testing, 2026-11
    items: [dev-1, {value: dev-2, reason: chargeback, expires_at: "2027-01-01T00:00:00+00:00"}]
  - name: bad_networks
    kind: ip
    csv: networks.csv
"""


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _store(tmp_path: Path) -> SQLiteOperations:
    return SQLiteOperations.in_state_dir(tmp_path / "state")


def _write(tmp_path: Path, text: str = RULES) -> Path:
    (tmp_path / "networks.csv").write_text("value,reason\n203.0.113.0/24,botnet\n10.0.0.1,test\n")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_load_creates_versions_with_who_and_why_then_only_changes(tmp_path: Path) -> None:
    path = _write(tmp_path)
    code, output = _run("rules", "load", str(path), "--reason", "from git abc123", "--by", "ana")
    assert code == 0, output
    assert "rules created: block-stolen-devices, review-big-foreign, allow-staff" in output
    store = _store(tmp_path)
    assert [s.name for s in store.current_rules()] == [
        "allow-staff",
        "block-stolen-devices",
        "review-big-foreign",
    ]
    version = store.rule_versions("block-stolen-devices")
    assert [(v.version, v.made.by, v.made.reason) for v in version] == [(1, "ana", "from git abc123")]
    assert store.list_info("bad_networks").items == 2
    counter = store.version()
    code, output = _run("rules", "load", str(path), "--reason", "again")
    assert code == 0, output
    assert store.version() == counter  # nothing differs: no new version
    path.write_text(RULES.replace("amount > 50", "amount > 80").replace("[dev-1, ", "["))
    code, output = _run("rules", "load", str(path), "--reason", "tuned", "--by", "bo")
    assert code == 0, output
    assert "rules changed: review-big-foreign" in output
    assert "lists changed: stolen_devices" in output
    assert store.rule("review-big-foreign").version == 2
    assert store.rule("review-big-foreign").made.by == "bo"
    assert [s.item.value for s in store.items("stolen_devices", 0, 10).items] == ["dev-2"]
    store.close()


def test_a_bad_file_names_the_rule_and_position_and_changes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, RULES.replace("amount > 50", "amout > 50"))
    code, output = _run("rules", "load", str(path), "--reason", "try")
    assert code == 2
    assert "rule 'review-big-foreign'" in output
    assert "line 1, column 32 ('amout')" in output
    assert _store(tmp_path).version() == 0
    path.write_text(RULES.replace("dev-1,", "'4111 1111 1111 1111',"))
    code, output = _run("rules", "load", str(path), "--reason", "try")
    assert code == 2
    assert "list 'stolen_devices'" in output
    assert "1111" not in output
    code, output = _run("rules", "load", str(tmp_path / "missing.yaml"), "--reason", "try")
    assert code == 2
    assert "missing.yaml" in output


def test_export_then_load_is_a_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path)
    assert _run("rules", "load", str(path), "--reason", "first")[0] == 0
    exported = tmp_path / "exported.yaml"
    code, output = _run("rules", "export", "--output", str(exported))
    assert code == 0, output
    document = yaml.safe_load(exported.read_text())
    assert [r["name"] for r in document["rules"]] == [
        "allow-staff",
        "block-stolen-devices",
        "review-big-foreign",
    ]
    assert document["rules"][2]["enabled"] is False
    stolen = next(listed for listed in document["lists"] if listed["name"] == "stolen_devices")
    assert stolen["field"] == "device_id"
    assert stolen["items"] == [
        {"value": "dev-1", "reason": "card testing, 2026-11"},
        {"value": "dev-2", "reason": "chargeback", "expires_at": "2027-01-01T00:00:00+00:00"},
    ]
    elsewhere = tmp_path / "other"
    code, output = _run("rules", "load", str(exported), "--reason", "copy", "--state-dir", str(elsewhere))
    assert code == 0, output
    code, again = _run("rules", "export", "--state-dir", str(elsewhere))
    assert code == 0
    assert again == exported.read_text()
    code, output = _run("rules", "load", str(exported), "--reason", "same")
    assert (code, output.strip()) == (0, "unchanged: 5")


def test_prune_deletes_what_the_file_does_not_name(tmp_path: Path) -> None:
    assert _run("rules", "load", str(_write(tmp_path)), "--reason", "first")[0] == 0
    path = tmp_path / "small.yaml"
    path.write_text("rules:\n  - {name: big, action: review, expression: amount > 500}\n")
    code, output = _run("rules", "load", str(path), "--reason", "cleanup", "--prune")
    assert code == 0, output
    assert "lists deleted: bad_networks, stolen_devices" in output
    store = _store(tmp_path)
    assert [s.name for s in store.current_rules()] == ["big"]
    assert store.rule_versions("allow-staff")[-1].change == "deleted"
    store.close()
