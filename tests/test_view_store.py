"""Saved long views live in their own capped, expiring cache: browsers can fill it, but never
evict a precomputed summary."""
import time

import numpy as np
import pytest

from cnc.experiment.config import ViewsSection, views_with_env
from cnc.experiment.errors import ConfigError
from cnc.precompute.store import SummaryStore
from cnc.server.urlstate import build_query, open_views, parse_query


def _long_query(i: int) -> str:
    return build_query({"sel": [f"model-{i}-{j}" for j in range(400)]})


def test_full_view_store_never_evicts_summaries(tmp_path):
    store = SummaryStore(tmp_path)
    probs = np.random.default_rng(0).random((500, 10)).astype(np.float32)
    store.put("outputs", "th", "ch", {"probs": probs})
    store.mark_done("th", "ch")
    views = open_views(tmp_path, max_mb=0.25)
    links = [views.shorten(_long_query(i)) for i in range(300)]  # ~1.5 MB of states, 6x the cap
    assert views.backend.volume() < 2 * 0.25 * 2 ** 20  # culled back near its cap
    assert views.expand(links[-1])[0] == _long_query(299)  # recent views are kept
    dropped = views.expand(links[0])
    assert dropped[0] == "" and "no longer available" in dropped[1][0]  # the oldest went, with a notice
    assert store.is_complete("th", "ch", ("outputs",))
    assert np.array_equal(store.get("outputs", "th", "ch")["probs"], probs)
    assert not any(k[0] == "view" for k in store.cache.iterkeys())  # nothing of views in the summaries


def test_views_expire_and_opening_one_renews_it(tmp_path):
    views = open_views(tmp_path, max_age_days=90)
    link = views.shorten(_long_query(1))
    key = ("view", parse_query(link)["view"])
    _, expires = views.backend.get(key, expire_time=True)
    assert expires == pytest.approx(time.time() + 90 * 86400, abs=60)
    short = open_views(tmp_path / "short", max_age_days=0.5 / 86400)  # half a second
    link = short.shorten(_long_query(2))
    assert short.expand(link)[0]
    time.sleep(0.6)
    assert short.expand(link)[0] == ""


def test_view_settings_from_env_override_the_config():
    assert views_with_env(ViewsSection(max_age_days=30), {}).max_age_days == 30
    got = views_with_env(ViewsSection(max_age_days=30), {"CNC_VIEW_DAYS": "7", "CNC_VIEW_MB": "16"})
    assert (got.max_age_days, got.max_mb) == (7, 16)
    with pytest.raises(ConfigError, match="CNC_VIEW_DAYS"):
        views_with_env(ViewsSection(), {"CNC_VIEW_DAYS": "-1"})


def test_config_views_section(tmp_path):
    from cnc.experiment.config import load_config

    (tmp_path / "c.yaml").write_text(
        "experiment: {models: [{id: a}]}\nviews: {max_age_days: 14, max_mb: 8}\n")
    cfg = load_config(tmp_path / "c.yaml", cache_dir=tmp_path / "cache")
    assert (cfg.views.max_age_days, cfg.views.max_mb) == (14, 8)
    (tmp_path / "bad.yaml").write_text("experiment: {models: [{id: a}]}\nviews: {max_age_days: 0}\n")
    with pytest.raises(ConfigError, match="views.max_age_days"):
        load_config(tmp_path / "bad.yaml", cache_dir=tmp_path / "cache")
