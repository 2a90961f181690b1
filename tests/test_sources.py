"""Image sources: the bundled crops, folders and file lists stream images by key, skip bad files."""
import numpy as np
import pytest
from PIL import Image

import neuronscope as ns
from neuronscope.data.photos import photo_names
from neuronscope.data.resolve import resolve_source
from neuronscope.data.sources import (
    BundledSource,
    FileListSource,
    FolderSource,
    bundled_source,
    file_list_source,
    first,
    folder_source,
)


def _save(path, seed=0, size=(20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def test_bundled_source_is_330_deterministic_crops():
    source = bundled_source()
    assert len(source) == 30 * len(photo_names()) == 330
    keys = list(source.keys())
    assert len(set(keys)) == 330 and keys[:3] == ["chelsea@1,0", "chelsea@0.7,0", "chelsea@0.7,1"]
    assert bundled_source().keys() == keys and bundled_source().fingerprint() == source.fingerprint()
    assert bundled_source(["coffee"]).fingerprint() != source.fingerprint()

    items = list(first(source, 31))  # all of chelsea, then the first crop of the next photo
    assert [key for key, _ in items] == keys[:31]
    for key, image in items:
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] == image.shape[1] and 0 <= image.min() and image.max() <= 1
    assert np.array_equal(source.load("chelsea@0.5,4"), dict(items)["chelsea@0.5,4"])
    assert items[0][1].shape[0] > items[1][1].shape[0] > items[5][1].shape[0]  # several scales


def test_bundled_source_rejects_unknown_photos_and_keys():
    with pytest.raises(ns.NeuronscopeError, match="did you mean 'chelsea'"):
        bundled_source(["chelsae"])
    with pytest.raises(ns.NeuronscopeError, match="not an item"):
        bundled_source(["coffee"]).load("coffee@0.3,0")


def test_folder_source_finds_images_recursively_in_sorted_order(tmp_path):
    _save(tmp_path / "b.png")
    _save(tmp_path / "sub" / "a.JPG", 1)
    _save(tmp_path / "sub" / "deeper" / "c.webp", 2)
    _save(tmp_path / "d.jpeg", 3)
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden" / "e.png", 4)
    source = folder_source(tmp_path)
    assert list(source.keys()) == ["b.png", "d.jpeg", "sub/a.JPG", "sub/deeper/c.webp"]
    items = source.items()
    assert [key for _, key, _ in items] == list(source.keys()) and items.skipped == []
    assert str(tmp_path) in source.name and "4 files" in source.name


def test_folder_source_skips_and_counts_corrupt_files(tmp_path):
    _save(tmp_path / "good1.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    _save(tmp_path / "good2.jpg", 1)
    source = folder_source(tmp_path)
    assert len(source) == 3
    assert [key for key, _ in source] == ["good1.png", "good2.jpg"]
    items = source.items()
    assert [key for _, key, _ in items] == ["good1.png", "good2.jpg"]
    assert [key for key, _ in items.skipped] == ["broken.png"] and "cannot read" in items.skipped[0][1]
    again = source.items()
    assert [key for _, key, _ in again] == ["good1.png", "good2.jpg"] and len(again.skipped) == 1  # each iteration its own


def test_bad_folders_fail_clearly(tmp_path):
    with pytest.raises(ns.NeuronscopeError, match="does not exist"):
        folder_source(tmp_path / "missing")
    _save(tmp_path / "one.png")
    with pytest.raises(ns.NeuronscopeError, match="is not a folder"):
        folder_source(tmp_path / "one.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here")
    with pytest.raises(ns.NeuronscopeError, match=r"no image files in folder .*empty.*\.jpg"):
        folder_source(empty)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("a.png", "b.jpg"):
        (corrupt / name).write_bytes(b"garbage")
    source = folder_source(corrupt)
    with pytest.raises(ns.NeuronscopeError, match=r"no readable image in folder .*corrupt.*all 2 files failed"):
        list(source)


def test_folder_fingerprint_follows_the_contents(tmp_path):
    _save(tmp_path / "a.png")
    before = folder_source(tmp_path).fingerprint()
    assert folder_source(tmp_path).fingerprint() == before
    _save(tmp_path / "a.png", size=(25, 30))
    assert folder_source(tmp_path).fingerprint() != before


def test_file_list_source_from_a_text_file_or_paths(tmp_path):
    _save(tmp_path / "images" / "a.png")
    _save(tmp_path / "b.png", 1)
    listing = tmp_path / "list.txt"
    listing.write_text("# my picks\nimages/a.png\n\nb.png\nmissing.png\n")
    source = file_list_source(listing)
    assert len(source) == 3
    items = source.items()
    assert [key for _, key, _ in items] == [str(tmp_path / "images" / "a.png"), str(tmp_path / "b.png")]
    assert len(items.skipped) == 1 and "not found" in items.skipped[0][1]
    direct = file_list_source([tmp_path / "b.png"])
    assert [key for key, _ in direct] == [str(tmp_path / "b.png")]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ns.NeuronscopeError, match="names no image files"):
        file_list_source(tmp_path / "empty.txt")


def test_resolve_source_reads_command_line_specs(tmp_path):
    assert isinstance(resolve_source(None), BundledSource)
    assert isinstance(resolve_source("photos"), BundledSource)
    _save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text("a.png\n")
    assert isinstance(resolve_source(str(tmp_path)), FolderSource)
    assert isinstance(resolve_source(str(tmp_path / "list.txt")), FileListSource)
    assert len(resolve_source(str(tmp_path / "a.png"))) == 1
    with pytest.raises(ns.NeuronscopeError, match="not found: give a folder"):
        resolve_source(str(tmp_path / "nope"))


def test_an_image_folder_layout_is_labelled_by_its_sub_folders(tmp_path):
    for i, label in enumerate(["cat", "cat", "dog", "fish", "dog"]):
        _save(tmp_path / label / f"{i}.png", i)
    source = folder_source(tmp_path)
    assert source.classes == ["cat", "dog", "fish"] and "3 classes" in source.name
    assert [source.label(key) for key in source.keys()] == ["cat", "cat", "dog", "dog", "fish"]
    _save(tmp_path / "loose.png", 9)  # one image outside a class folder: no longer an ImageFolder
    unlabelled = folder_source(tmp_path)
    assert unlabelled.classes is None and unlabelled.label("cat/0.png") is None


def test_a_torch_dataset_is_a_source_with_its_labels():
    import torch

    class Digits(torch.utils.data.Dataset):
        classes = ["zero", "one", "two"]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise OSError("disk hiccup")
            image = torch.full((3, 8, 10), i / 4) if i != 3 else (np.ones((8, 10, 3)) * 255).astype(np.uint8)
            return image, i % 3

    source = ns.data.dataset_source(Digits())
    assert list(source.keys()) == ["0", "1", "2", "3"] and "Digits" in source.name
    iteration = source.items()
    items = [(key, image) for _, key, image in iteration]
    assert [key for key, _ in items] == ["0", "1", "3"] and "disk hiccup" in iteration.skipped[0][1]
    assert items[1][1].shape == (8, 10, 3) and np.allclose(items[1][1], 0.25) and np.allclose(items[2][1], 1.0)
    assert [source.label(k) for k in ("0", "1", "3")] == ["zero", "one", "zero"]
    assert source.fingerprint() == ns.data.dataset_source(Digits()).fingerprint()
    with pytest.raises(ns.NeuronscopeError, match="map-style dataset"):
        ns.data.dataset_source(iter([1, 2]))


def _shard(path, samples):
    """A WebDataset-style tar: <key>.png (+ <key>.cls with the label)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for key, seed, label in samples:
            data = io.BytesIO()
            Image.fromarray((np.random.default_rng(seed).random((12, 16, 3)) * 255).astype(np.uint8)).save(data, "PNG")
            members = [(f"{key}.png", data.getvalue())] + ([(f"{key}.cls", label.encode())] if label else [])
            for name, payload in members:
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


def test_tar_shards_stream_images_with_labels_and_skip_broken_members(tmp_path):
    import tarfile

    shards = tmp_path / "shards"
    shards.mkdir()
    _shard(shards / "train-000.tar", [("a/x1", 1, "cat"), ("a/x2", 2, "dog")])
    _shard(shards / "train-001.tar", [("b/y1", 3, None)])
    with tarfile.open(shards / "train-001.tar", "a") as tar:  # a member that is not an image
        import io
        info = tarfile.TarInfo("b/broken.jpg")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"garbage"))
    source = resolve_source(str(shards))
    assert list(source.keys()) == ["train-000/a/x1", "train-000/a/x2", "train-001/b/y1", "train-001/b/broken"]
    iteration = source.items()
    items = [(key, image) for _, key, image in iteration]
    assert [key for key, _ in items] == list(source.keys())[:3] and items[0][1].shape == (12, 16, 3)
    expected = np.asarray(Image.fromarray((np.random.default_rng(2).random((12, 16, 3)) * 255).astype(np.uint8)))
    assert np.array_equal((items[1][1] * 255).round().astype(np.uint8), expected)
    assert [source.label(k) for k, _ in items] == ["cat", "dog", None]
    assert len(iteration.skipped) == 1 and "broken.jpg" in iteration.skipped[0][1]
    assert len(resolve_source(str(shards / "train-*.tar"))) == 4 and len(resolve_source(str(shards / "train-000.tar"))) == 2
    (tmp_path / "packed.tar.gz").write_bytes(b"")
    with pytest.raises(ns.NeuronscopeError, match="compressed"):
        ns.data.tar_shards_source(tmp_path / "packed.tar.gz")
