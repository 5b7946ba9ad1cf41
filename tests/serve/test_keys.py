"""API keys (pipeline/keys.py and `python -m pipeline keys`): only the hash is stored; names are unique."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from pipeline.cli import main
from pipeline.serve.keys import (
    KEY_PREFIX,
    ApiKeyError,
    create_key,
    find_key,
    list_keys,
    mark_used,
    needs_touch,
    revoke_key,
    utc_now,
)
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine


def stored_rows(settings) -> list[dict]:
    with get_engine(settings.warehouse_url).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(t.api_keys)).fetchall()]


def found(settings, key: str):
    with get_engine(settings.warehouse_url).connect() as conn:
        return find_key(conn, key)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_stores_only_the_sha256_of_the_key(settings):
    key = create_key(settings, "crm-sync")
    [row] = stored_rows(settings)
    assert row["name"] == "crm-sync"
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(value) for value in row.values()}
    assert row["created_at"] is not None and row["last_used_at"] is None and row["revoked_at"] is None


def test_keys_are_random_and_recognisable(settings):
    first, second = create_key(settings, "a"), create_key(settings, "b")
    assert first != second
    assert first.startswith(KEY_PREFIX) and second.startswith(KEY_PREFIX)
    assert len(first) >= len(KEY_PREFIX) + 43  # 32 random bytes, url-safe base64


def test_find_key_accepts_the_key_and_nothing_else(settings):
    key = create_key(settings, "bi")
    assert found(settings, key).name == "bi"
    assert found(settings, key + "x") is None
    assert found(settings, key[:-1]) is None
    assert found(settings, hashlib.sha256(key.encode()).hexdigest()) is None  # the stored hash is not a key


def test_revoked_key_is_not_found(settings):
    key = create_key(settings, "old")
    when, now = revoke_key(settings, "old")
    assert now and when is not None
    assert found(settings, key) is None
    assert list_keys(settings)[0].revoked_at == when


def test_revoking_twice_keeps_the_first_time(settings):
    create_key(settings, "old")
    first, _ = revoke_key(settings, "old")
    again, now = revoke_key(settings, "old")
    assert (again, now) == (first, False)


def test_duplicate_name_is_refused_even_after_revoking(settings):
    create_key(settings, "etl")
    with pytest.raises(ApiKeyError, match="already exists"):
        create_key(settings, "etl")
    revoke_key(settings, "etl")
    with pytest.raises(ApiKeyError, match="already exists"):
        create_key(settings, "etl")
    assert len(stored_rows(settings)) == 1


def test_unknown_name_cannot_be_revoked(settings):
    create_key(settings, "etl")
    with pytest.raises(ApiKeyError, match="no API key named 'nope'"):
        revoke_key(settings, "nope")


@pytest.mark.parametrize("name", ["", "   ", "tab\there", "x" * 101])
def test_key_names_must_be_short_and_printable(settings, name):
    with pytest.raises(ApiKeyError, match="key name"):
        create_key(settings, name)


def test_last_used_is_written_at_most_once_a_minute(settings):
    key = create_key(settings, "bi")
    info = found(settings, key)
    now = utc_now()
    assert needs_touch(info, now)
    mark_used(get_engine(settings.warehouse_url), "bi", now)
    info = found(settings, key)
    assert info.last_used_at == now
    assert not needs_touch(info, now + timedelta(seconds=59))
    assert needs_touch(info, now + timedelta(seconds=60))


def test_list_is_oldest_first_with_every_key(settings):
    """Creation times (stored to the second) set apart so that neither name nor insertion order gives this list;
    keys made in the same second are listed by name."""
    created = {"zeta": datetime(2025, 1, 1), "alpha": datetime(2025, 2, 1), "mid": datetime(2025, 3, 1), "beta": datetime(2025, 3, 1)}
    for name in ("mid", "beta", "alpha", "zeta"):
        create_key(settings, name)
    with get_engine(settings.warehouse_url).begin() as conn:
        for name, when in created.items():
            conn.execute(t.api_keys.update().where(t.api_keys.c.name == name).values(created_at=when))
    revoke_key(settings, "alpha")
    listed = list_keys(settings)
    assert [(k.name, k.created_at) for k in listed] == sorted(created.items(), key=lambda item: (item[1], item[0]))
    assert [k.name for k in listed] == ["zeta", "alpha", "beta", "mid"]
    assert [k.name for k in listed if k.revoked_at] == ["alpha"]


# --- the command line ---------------------------------------------------------------------------------


def test_cli_create_prints_the_key_as_its_last_word(settings, capsys):
    code, out, err = cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    assert (code, err) == (0, "")
    key = out.split()[-1]
    assert key.startswith(KEY_PREFIX)
    assert found(settings, key).name == "crm"
    assert stored_rows(settings)[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()


def test_cli_list_never_shows_the_key_or_its_hash(settings, capsys):
    _, out, _ = cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    key = out.split()[-1]
    cli(capsys, "keys", "revoke", "crm", "--warehouse", settings.warehouse_url)
    code, out, err = cli(capsys, "keys", "list", "--warehouse", settings.warehouse_url)
    assert (code, err) == (0, "")
    header, line = out.splitlines()
    assert header.split()[:3] == ["NAME", "CREATED", "(UTC)"]
    assert line.startswith("crm ") and line.count("-") >= 4  # created and revoked dates; last used "-"
    assert key not in out and hashlib.sha256(key.encode()).hexdigest() not in out


def test_cli_list_with_no_keys(settings, capsys):
    cli(capsys, "keys", "create", "x", "--warehouse", settings.warehouse_url)  # creates the tables
    with get_engine(settings.warehouse_url).begin() as conn:
        conn.execute(t.api_keys.delete())
    code, out, _ = cli(capsys, "keys", "list", "--warehouse", settings.warehouse_url)
    assert code == 0 and out.startswith("no API keys")


def test_cli_duplicate_name_is_one_line_and_exit_1(settings, capsys):
    cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    code, out, err = cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("error: ") and "already exists" in err


def test_cli_revoke_unknown_name_is_one_line_and_exit_1(settings, capsys):
    cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    code, out, err = cli(capsys, "keys", "revoke", "nobody", "--warehouse", settings.warehouse_url)
    assert (code, out) == (1, "")
    assert err == "error: no API key named 'nobody'\n"


def test_cli_revoke_says_when(settings, capsys):
    cli(capsys, "keys", "create", "crm", "--warehouse", settings.warehouse_url)
    code, out, _ = cli(capsys, "keys", "revoke", "crm", "--warehouse", settings.warehouse_url)
    assert code == 0 and out.startswith("revoked API key 'crm' at ")
    _, out, _ = cli(capsys, "keys", "revoke", "crm", "--warehouse", settings.warehouse_url)
    assert out.startswith("already revoked API key 'crm'")


def test_cli_list_on_an_unreachable_warehouse_is_one_line(capsys):
    code, out, err = cli(capsys, "keys", "list", "--warehouse", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert (code, out) == (1, "")
    assert err.startswith("error: cannot open warehouse postgresql+psycopg://nobody@127.0.0.1:1/none") and err.count("\n") == 1


def test_cli_list_and_revoke_on_a_warehouse_no_run_has_written(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert cli(capsys, "keys", "list", "--warehouse", url)[:2] == (0, "no API keys (create one with: python -m pipeline keys create NAME)\n")
    code, _, err = cli(capsys, "keys", "revoke", "crm", "--warehouse", url)
    assert (code, err) == (1, "error: no API key named 'crm'\n")
