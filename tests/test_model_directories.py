"""Model directories as checkpoints (Hugging Face `save_pretrained` folders): their content hash
changes when any file in them changes, ignores hidden files, and the cluster sees them as readable."""
from cnc.experiment.checkpoints import readable
from cnc.precompute.store import SummaryStore


def test_a_directory_hash_follows_its_files(tmp_path):
    store = SummaryStore(tmp_path / "cache")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"a": 1}')
    (model / "sub" / "model.safetensors").write_bytes(b"weights")
    first = store.file_hash(model)
    assert first is not None and store.file_hash(model) == first and readable(str(model))
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_text("x")  # hidden: tools' scratch files do not count
    assert store.file_hash(model) == first
    (model / "sub" / "model.safetensors").write_bytes(b"weightz")  # same size, new content
    changed = store.file_hash(model)
    assert changed not in (None, first)
    (model / "sub" / "model.safetensors").rename(model / "model.safetensors")  # same bytes, other name
    assert store.file_hash(model) not in (None, first, changed)
    assert store.file_hash(tmp_path / "empty-or-missing") is None
    (tmp_path / "empty").mkdir()
    assert store.file_hash(tmp_path / "empty") is None
