"""schemas/tables.yml documents exactly the tables and columns of pipeline/tables.py, with their keys and facts."""

from __future__ import annotations

import pytest

from pipeline.runs.expectations import DERIVED, TABLES_DOC, _call, check_facts, table_docs
from pipeline.transform.channels import CHANNEL_RULES
from pipeline.warehouse import tables as t
from pipeline.warehouse.rows import key_columns

TABLES = sorted(t.metadata.tables)


def documented(table: str) -> dict[str, dict]:
    return {c["name"]: c for c in table_docs()[table]["columns"]}


def test_every_table_is_documented_and_nothing_else():
    assert sorted(table_docs()) == TABLES


@pytest.mark.parametrize("table", TABLES)
def test_every_column_is_documented_once_and_nothing_else(table):
    names = [c["name"] for c in table_docs()[table]["columns"]]
    assert len(names) == len(set(names)), f"{table}: a column is documented twice"
    assert sorted(names) == sorted(c.name for c in t.metadata.tables[table].columns)


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_a_description_and_its_key(table):
    doc = table_docs()[table]
    assert doc.get("description", "").strip()
    assert doc["key"] == key_columns(t.metadata.tables[table])


@pytest.mark.parametrize("table", TABLES)
def test_every_column_has_a_description(table):
    for name, column in documented(table).items():
        assert str(column.get("description", "")).strip(), f"{table}.{name} has no description"


@pytest.mark.parametrize("table", TABLES)
def test_not_null_is_documented_exactly_as_declared(table):
    for column in t.metadata.tables[table].columns:
        assert bool(documented(table)[column.name].get("not_null")) == (not column.nullable), f"{table}.{column.name}"


@pytest.mark.parametrize("table", TABLES)
def test_single_column_keys_and_unique_columns_are_marked_unique(table):
    sql = t.metadata.tables[table]
    keys = key_columns(sql)
    must = set(keys if len(keys) == 1 else []) | {c.name for c in sql.columns if c.unique}
    for name in must:
        assert documented(table)[name].get("unique") is True, f"{table}.{name} is a key but not marked unique"


@pytest.mark.parametrize("table", TABLES)
def test_every_checked_column_says_whether_it_is_critical(table):
    for name, column in documented(table).items():
        if check_facts(column):
            assert isinstance(column.get("critical"), bool), f"{table}.{name} has checks but no critical: true|false"


@pytest.mark.parametrize("table", TABLES)
def test_bounds_and_value_lists_are_well_formed(table):
    for name, column in documented(table).items():
        if "min" in column and "max" in column:
            assert column["min"] <= column["max"], f"{table}.{name}"
        if "accepted_values" in column:
            assert isinstance(column["accepted_values"], list) and column["accepted_values"], f"{table}.{name}"


@pytest.mark.parametrize("table", TABLES)
def test_consistency_checks_name_documented_columns_and_known_derived_values(table):
    context = {value["name"] for value in table_docs()[table].get("run_context", [])}
    names = set(documented(table)) | context
    for check in table_docs()[table].get("consistency", []):
        assert check["column"] in names and check.get("description") and isinstance(check.get("critical"), bool)
        for key in ("at_least", "at_most", "equals", "of"):
            if key in check:
                call = _call(str(check[key]))
                used = call[1] if call else [check[key]]
                assert set(used) <= names, f"{table}: {check[key]} names an undocumented column"
                assert call is None or call[0] in DERIVED
        if "of" in check:
            assert _call(str(check["of"])) is not None and ({"min", "max", "accepted_values"} & set(check)), check
        if "when" in check:
            assert any(key in check for key in ("at_least", "at_most", "equals")), check


@pytest.mark.parametrize("table", TABLES)
def test_run_context_values_are_documented_and_not_stored(table):
    for value in table_docs()[table].get("run_context", []):
        assert value["name"] not in t.metadata.tables[table].c, f"{table}.{value['name']} is a stored column"
        assert str(value.get("description", "")).strip() and isinstance(value.get("critical"), bool)


def test_attribution_gates_are_encoded():
    """SPEC section 14's gates: every credit in [0, 1] summing to 1 per conversion, sessions in the journey, not
    after the conversion and within the lookback."""
    doc = table_docs()["attribution_credits"]
    columns = documented("attribution_credits")
    for model in t.RULE_MODELS:
        assert (columns[model]["min"], columns[model]["max"], columns[model]["critical"]) == (0, 1, True)
        [total] = [c for c in doc["consistency"] if c.get("of") == f"sum_per(conversion_event_id, {model})"]
        assert (total["min"], total["max"], total["critical"]) == (1 - 1e-9, 1 + 1e-9, True)
    checks = {(c["column"], c.get("at_least") or c.get("at_most") or c.get("equals"), c.get("when")) for c in doc["consistency"]}
    assert {("session_timestamp", "conversion_timestamp", None), ("session_timestamp", "journey_session_timestamp", None),
            ("session_timestamp", "lookback_start", "position > 1")} <= checks


def test_spec_facts_are_encoded():
    events, sessions, contacts = documented("events"), documented("sessions"), documented("contacts")
    assert events["event_type"]["accepted_values"] == ["page_view", "conversion"]
    assert documented("pipeline_runs")["status"]["accepted_values"] == ["running", "success", "failed"]
    assert sessions["session_duration"]["min"] == 0 and sessions["page_views"]["min"] == 0 and sessions["conversions"]["min"] == 0
    assert (contacts["conversion_rate_percent"]["min"], contacts["conversion_rate_percent"]["max"]) == (0, 100)
    assert contacts["total_sessions"]["min"] == 1 and contacts["total_conversions"]["min"] == 1
    assert contacts["days_to_convert"]["min"] == 0
    for name in ("avg_days_between_conversions", "avg_days_between_sessions", "avg_session_duration_seconds"):
        assert contacts[name]["min"] == 0


def test_channel_values_are_the_channel_rules():
    rules = [name for name, _ in CHANNEL_RULES] + ["Unassigned"]
    for table in ("sessions", "contact_sessions"):
        assert documented(table)["channel"]["accepted_values"] == rules


def test_shared_descriptions_are_written_once():
    text = TABLES_DOC.read_text(encoding="utf-8")
    assert text.count("First-party visitor id (cookie)") == 1
    assert text.count("Sessions in the contact's journey") == 1
