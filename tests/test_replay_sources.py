"""`open_source`: every `--source` spec opens the reader it names, and a bad spec says what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from shinzo_otel.replay import SourceUnavailableError
from shinzo_otel.replay.jaeger import JaegerSource
from shinzo_otel.replay.otlp_json import OtlpJsonFileSource
from shinzo_otel.replay.sources import open_source
from shinzo_otel.replay.tempo import TempoSource
from shinzo_otel.store import SHINZO_STORE_PATH, SessionStore
from tests.test_store import record_session, sqlite_tracer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.db"
    with sqlite_tracer(path) as tracer:
        record_session(tracer, "s")
    return path


def test_the_embedded_store_is_the_default(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHINZO_STORE_PATH, str(db))
    for spec in (None, "", "sqlite:"):
        source = open_source(spec)
        try:
            assert isinstance(source, SessionStore)
            assert [summary.session_id for summary in source.list_sessions()] == ["s"]
        finally:
            source.close()


def test_each_scheme_opens_its_reader(db: Path, tmp_path: Path) -> None:
    (tmp_path / "sessions.jsonl").write_text("")
    opened = [
        open_source(f"sqlite:{db}"),
        open_source(f"file:{tmp_path / 'sessions.jsonl'}"),
        open_source("tempo:http://127.0.0.1:3200"),
        open_source("jaeger:127.0.0.1:16686"),
    ]
    try:
        assert [type(source) for source in opened] == [
            SessionStore,
            OtlpJsonFileSource,
            TempoSource,
            JaegerSource,
        ]
        assert opened[1].list_sessions() == []
    finally:
        for source in opened:
            source.close()


@pytest.mark.parametrize("spec", ["bogus:x", "no-scheme", "file:", "tempo:", "http://127.0.0.1:3200"])
def test_a_bad_spec_names_what_is_accepted(spec: str) -> None:
    with pytest.raises(ValueError, match="source"):
        open_source(spec)


def test_a_missing_store_or_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="no session store at"):
        open_source(f"sqlite:{tmp_path / 'missing.db'}")
    with pytest.raises(SourceUnavailableError, match="no OTLP JSON file at"):
        open_source(f"file:{tmp_path / 'missing.jsonl'}")
