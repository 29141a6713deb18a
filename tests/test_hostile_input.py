"""Property-based tests: any URL or experiment input yields a valid state or a clear error."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnc.experiment.config import load_config
from cnc.experiment.errors import ConfigError, ExperimentError
from cnc.experiment.forest import parse_experiment
from cnc.server.urlstate import ViewStore, build_query, parse_query

queries = st.text(max_size=300) | st.builds(lambda kv: "?" + "&".join(f"{k}={v}" for k, v in kv),
                                            st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=8))


@given(queries)
def test_parse_query_never_raises(search):
    params = parse_query(search)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    parse_query(build_query(params))  # round trip never raises


@given(st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda s: s.strip() == s),
                       st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "," not in s),
                       max_size=6))
def test_build_parse_round_trip(params):
    assert parse_query(build_query(params)) == params


@given(st.text(max_size=100))
def test_view_ids_are_data_not_paths(view):
    store = ViewStore({})
    search = "?view=" + view
    query, notices = store.expand(search)
    if parse_query(search).get("view") is None:  # no view id at all: the query passes through
        assert query == search and not notices
    else:  # an id that was never stored (or is malformed) opens defaults, with a notice
        assert query == "" and notices


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)
model = st.fixed_dictionaries({"id": st.text(max_size=4) | st.integers(0, 5)},
                              optional={"base": st.none() | st.text(max_size=3), "operation": json_values,
                                        "metrics": json_values, "tag": json_values})


@given(st.fixed_dictionaries({"models": st.lists(model, max_size=6)},
                             optional={"metrics": json_values, "operations": json_values}) | json_values)
@settings(max_examples=300)
def test_experiment_parser_only_raises_experiment_errors(data):
    try:
        exp = parse_experiment(data, where="x.json")
    except ExperimentError as exc:
        assert str(exc).startswith("x.json")
    else:
        assert all(m.base is None or m.base in exp.models for m in exp.models.values())


@given(json_values)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_config_loader_only_raises_clear_errors(tmp_path, data):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"experiment": data}))
    try:
        load_config(path, cache_dir=tmp_path / "cache")
    except (ConfigError, ExperimentError) as exc:
        assert "c.json" in str(exc)
