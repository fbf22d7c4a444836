"""Safe ingest: every rule of issue 4 with a hostile or broken input generated here."""

import io
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data import ingest, safe_read
from core.data.datasets import load_dataset
from core.data.ingest import IngestLimits, Rejected


def png_bytes(array, mode=None, **save):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, "PNG", **save) if mode else \
        Image.fromarray(array).save(buffer, "PNG", **save)
    return buffer.getvalue()


def encode(image, fmt, **save):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def grey(value, size=(6, 6)):
    return np.full(size, value, np.uint8)


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries:  # name: str or a hand-made ZipInfo
            archive.writestr(name, data)
    for name, _ in entries:
        if isinstance(name, encrypted_info):
            _set_encrypted_flag(path, name.filename.encode())
    return path


def _set_encrypted_flag(path, name):
    raw = bytearray(path.read_bytes())
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_at: start + name_at + len(name)] == name:
                raw[start + flag_at] |= 0x1
            start += 4
    path.write_bytes(bytes(raw))


def symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)
    return info


class encrypted_info(zipfile.ZipInfo):
    """Marks an entry as encrypted; zipfile cannot write one, so make_zip patches the flag bits."""


def forge_entry(path, name, **fields):
    """Overwrite `crc`, `compress_size` and/or `file_size` of entry `name` in its local header and in
    the central directory (which zipfile trusts): an archive that lies about itself."""
    raw = bytearray(path.read_bytes())
    for signature, crc_at, name_at in ((b"PK\x03\x04", 14, 30), (b"PK\x01\x02", 16, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_at: start + name_at + len(name)] == name:
                crc, compress_size, file_size = struct.unpack_from("<III", raw, start + crc_at)
                struct.pack_into("<III", raw, start + crc_at, fields.get("crc", crc),
                                 fields.get("compress_size", compress_size), fields.get("file_size", file_size))
            start += 4
    path.write_bytes(bytes(raw))


# ---------------------------------------------------------------------------- zip rules


@pytest.mark.parametrize("entry, reason", [
    ("../evil.png", "'..'"), ("a/../../evil.png", "'..'"), ("..\\evil.png", "'..'"),
    ("/etc/evil.png", "absolute"), ("\\evil.png", "absolute"), ("C:/evil.png", "drive letter"),
    (symlink_info("link.png"), "symbolic link"), (encrypted_info("secret.png"), "encrypted")])
def test_hostile_zip_entry_rejects_whole_archive_and_writes_nothing(data_root, entry, reason):
    make_zip(data_root / "up.zip", [("ok.png", png_bytes(grey(10))), (entry, png_bytes(grey(20)))])
    name = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
    with pytest.raises(ValueError, match=reason) as info:
        load_dataset("up.zip")
    assert repr(name) in str(info.value) or name in str(info.value)
    assert not (data_root / "uploads").exists()
    assert sorted(p.name for p in data_root.iterdir()) == ["up.zip"]


def test_zip_entry_count_cap(data_root):
    path = make_zip(data_root / "many.zip", [(f"{i}.png", png_bytes(grey(i))) for i in range(5)])
    with pytest.raises(Rejected, match="5 entries"):
        ingest.load_path("many.zip", data_root, limits=IngestLimits(max_entries=4))
    assert ingest.load_path(path.name, data_root, limits=IngestLimits(max_entries=5)).images.shape[0] == 5


def test_zip_declared_total_size_cap(data_root):
    make_zip(data_root / "big.zip", [("a.bin", b"x" * 5000)], zipfile.ZIP_STORED)
    with pytest.raises(Rejected, match="declares 5,000 bytes"):
        ingest.load_path("big.zip", data_root, limits=IngestLimits(max_total_bytes=4999))
    assert not (data_root / "uploads").exists()


def test_zip_bomb_compression_ratio_is_refused_before_extracting(data_root):
    make_zip(data_root / "bomb.zip", [("zeros.png", b"\0" * (4 << 20))])
    with pytest.raises(Rejected, match="compression ratio"):
        load_dataset("bomb.zip")
    assert not (data_root / "uploads").exists()


def test_nested_archive_is_not_expanded_and_is_listed(data_root, tmp_path):
    inner = make_zip(tmp_path / "inner.zip", [("hidden.png", png_bytes(grey(1)))])
    make_zip(data_root / "outer.zip", [("a.png", png_bytes(grey(9))), ("inner.zip", inner.read_bytes())])
    ds = load_dataset("outer.zip")
    assert ds.ids == ["a.png"]
    assert dict(ds.skipped)["inner.zip"].startswith("an archive (nested archives are not expanded)")
    extracted = [p.name for p in (data_root / "uploads").rglob("*")]
    assert "hidden.png" not in extracted


def test_valid_zip_is_extracted_under_uploads_and_reused(data_root):
    make_zip(data_root / "set.zip", [("b/2.png", png_bytes(grey(2))), ("a/1.png", png_bytes(grey(1)))])
    first = load_dataset("set.zip", subfolders_as_classes=True)
    second = load_dataset("set.zip", subfolders_as_classes=True)
    assert first.ids == ["a/1.png", "b/2.png"] and first.class_names == ["a", "b"]
    assert first.fingerprint == second.fingerprint
    assert len([p for p in (data_root / "uploads").iterdir()]) == 1  # reused, no staging left


def test_a_zip_made_by_compress_folder_is_looked_through_for_its_classes(data_root):
    """Every OS's "compress folder" wraps the class folders in one top folder (and macOS adds __MACOSX)."""
    entries = [(f"shapes/{cls}/{i}.png", png_bytes(grey(10 * c + i))) for c, cls in
               enumerate(("circles", "squares", "stars")) for i in range(2)]
    make_zip(data_root / "shapes.zip", entries + [("__MACOSX/shapes/._x", b"junk")])
    ds = load_dataset("shapes.zip", subfolders_as_classes=True)
    assert ds.class_names == ["circles", "squares", "stars"] and ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.ids[0] == "circles/0.png"


def test_a_folder_under_nested_single_folders_is_looked_through(data_root):
    for cls in ("a", "b"):
        (data_root / "outer" / "inner" / cls).mkdir(parents=True)
        (data_root / "outer" / "inner" / cls / "1.png").write_bytes(png_bytes(grey(len(cls) * 5 + ord(cls))))
    ds = load_dataset("outer", subfolders_as_classes=True)
    assert ds.class_names == ["a", "b"]


def test_a_single_class_folder_stays_one_class(data_root):
    """The one subfolder of images is a class of its own, not a wrapper to look through."""
    (data_root / "one" / "cats").mkdir(parents=True)
    for i in range(2):
        (data_root / "one" / "cats" / f"{i}.png").write_bytes(png_bytes(grey(i)))
    ds = load_dataset("one", subfolders_as_classes=True)
    assert ds.class_names == ["cats"] and ds.labels.tolist() == [0, 0]


def test_a_zip_with_nothing_usable_leaves_no_folder_and_keeps_an_earlier_one(data_root):
    make_zip(data_root / "notes.zip", [("a.txt", b"hello"), ("b.png", b"\x89PNG\r\n\x1a\n broken")])
    with pytest.raises(ValueError, match="no usable images"):
        load_dataset("notes.zip")
    assert list((data_root / "uploads").iterdir()) == []
    make_zip(data_root / "set.zip", [("1.png", png_bytes(grey(1)))])
    load_dataset("set.zip")
    kept = list((data_root / "uploads").iterdir())
    (data_root / "uploads" / kept[0].name / "1.png").write_bytes(b"now broken")  # extracted earlier, then damaged
    with pytest.raises(ValueError, match="no usable images"):
        load_dataset("set.zip")
    assert list((data_root / "uploads").iterdir()) == kept  # what was saved before is not removed


def test_corrupt_zip_is_a_clear_error(data_root):
    (data_root / "junk.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Rejected, match="not a valid zip"):
        load_dataset("junk.zip")


def test_import_upload_from_outside_the_root(data_root, tmp_path):
    upload = make_zip(tmp_path / "my upload!.zip", [("x.png", png_bytes(grey(3)))])
    folder = ingest.import_upload(upload, data_root)
    assert folder.parent == data_root / "uploads" and folder.name.startswith("my_upload_")
    assert load_dataset(str(folder)).images.shape == (1, 6, 6, 1)


def test_zip_declaring_more_compressed_bytes_than_it_holds_is_refused(data_root):
    # six entries of 8 MiB zeros deflate to ~8 KB each (ratio ~1000); the forged directory says 50 KB each
    # (ratio ~170 < 200), so each entry's declared data runs over the next ones (stored random bytes at
    # the end keep the last one inside the file): 48 MiB from ~110 KB, extracted and kept before the fix
    entries = [(f"zeros{i}.bin", b"\0" * (8 << 20)) for i in range(6)] + [("ok.png", png_bytes(grey(5)))]
    path = make_zip(data_root / "forged.zip", entries)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr("padding.bin", np.random.default_rng(0).bytes(60_000))
    for i in range(6):
        forge_entry(path, f"zeros{i}.bin".encode(), compress_size=50_000)
    size = path.stat().st_size
    with pytest.raises(Rejected, match=rf"forged\.zip: .* compressed bytes but the archive is only {size:,} bytes"):
        load_dataset("forged.zip")
    assert not (data_root / "uploads").exists()


@pytest.mark.parametrize("crc_of", ["the declared part", "the whole stream"])
def test_zip_entry_inflating_past_its_declared_size_is_refused(data_root, tmp_path, crc_of):
    stream = b"\0" * (16 << 20)  # the directory says 1,000 bytes
    upload = make_zip(tmp_path / "liar.zip", [("ok.png", png_bytes(grey(5))), ("big.bin", stream)])
    forge_entry(upload, b"big.bin", file_size=1000,
                crc=zlib.crc32(stream[:1000] if crc_of == "the declared part" else stream))
    with pytest.raises(Rejected, match=r"liar\.zip: entry 'big\.bin' inflates past the 1,000 bytes its header"):
        ingest.import_upload(upload, data_root)
    assert list((data_root / "uploads").rglob("*")) == []  # no extracted folder, no staging left


def test_extraction_counts_written_bytes_and_stops_at_the_cap(data_root, tmp_path):
    path = make_zip(tmp_path / "honest.zip", [("a.bin", b"x" * (3 << 20))])
    staging = tmp_path / "staging"
    staging.mkdir()
    budget = ingest._Budget([(2 << 20, "a test cap")], "honest.zip")
    with zipfile.ZipFile(path) as archive, pytest.raises(Rejected, match="honest.zip: .*more than a test cap"):
        ingest._extract_entry(archive, archive.getinfo("a.bin"), staging, budget)
    assert (staging / "a.bin").stat().st_size <= 2 << 20  # stopped at the cap, not after the entry


def test_uploads_quota_is_checked_before_extracting_and_keeps_earlier_uploads(data_root, tmp_path):
    earlier = ingest.import_upload(make_zip(tmp_path / "a.zip", [("1.png", png_bytes(grey(1)))]), data_root)
    used = sum(p.stat().st_size for p in (data_root / "uploads").rglob("*") if p.is_file())
    second = make_zip(tmp_path / "b.zip", [("2.bin", b"x" * 5000)], zipfile.ZIP_STORED)
    with pytest.raises(Rejected, match=rf"b\.zip: .*{used + 5000:,} bytes.*max_uploads_bytes"):
        ingest.import_upload(second, data_root, IngestLimits(max_uploads_bytes=used + 4999))
    assert [p.name for p in (data_root / "uploads").iterdir()] == [earlier.name]  # nothing new, nothing lost
    assert (earlier / "1.png").is_file()
    assert ingest.import_upload(second, data_root, IngestLimits(max_uploads_bytes=used + 5000)).is_dir()


def test_uploads_quota_applies_to_array_uploads(data_root, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 5), np.uint8))
    size = (tmp_path / "x.npy").stat().st_size
    with pytest.raises(Rejected, match=r"x\.npy: .*max_uploads_bytes"):
        ingest.import_upload(tmp_path / "x.npy", data_root, IngestLimits(max_uploads_bytes=size - 1))
    assert not (data_root / "uploads").exists()
    assert ingest.import_upload(tmp_path / "x.npy", data_root, IngestLimits(max_uploads_bytes=size)).is_file()


# ---------------------------------------------------------------------------- images


def _bomb_png(width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_pillow_decompression_bomb_protection_stays_on():
    with pytest.raises(Rejected, match="decompression bomb"):
        ingest.read_image(_bomb_png(100_000, 100_000), IngestLimits(max_image_pixels=10 ** 12))


def test_pixel_cap_is_checked_on_the_header_before_decoding():
    with pytest.raises(Rejected, match="more than 1,000"):
        ingest.read_image(_bomb_png(100, 100), IngestLimits(max_image_pixels=1000))


def solid(fmt, colour, size=(6000, 6000), **save):
    return encode(Image.new("RGB", size, colour), fmt, **save)


def test_large_images_decode_reduced_and_are_stored_at_the_dataset_size(data_root):
    # 6000x6000 RGB is 108 MB decoded at full size; each file here is a few hundred KB at most
    pngs = [solid("PNG", colour, compress_level=1) for colour in ((200, 30, 90), (10, 220, 40))]
    entries = [(f"{i}.png", pngs[i % 2]) for i in range(4)] + [("4.jpg", solid("JPEG", (40, 60, 230), quality=95))]
    make_zip(data_root / "huge.zip", entries, zipfile.ZIP_STORED)
    tracemalloc.start()
    try:
        ds = load_dataset("huge.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds.images.shape == (5, 256, 256, 3)  # the most common size, scaled to fit max_side
    assert "scaled from 6000×6000 to 256×256 px" in ds.description  # the summary says so
    assert (ds.images[0] == (200, 30, 90)).all() and (ds.images[3] == (10, 220, 40)).all()
    assert np.abs(ds.images[4].astype(int) - (40, 60, 230)).max() <= 3
    assert peak < 100 << 20, f"{peak / 2 ** 20:.0f} MiB allocated at the peak of the ingest"


def gradient(height, width):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt, orientation", [("PNG", 1), ("JPEG", 1), ("JPEG", 6), ("PNG", 8)])
def test_reduced_decode_matches_decoding_everything_then_resizing(fmt, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(gradient(1500, 2400)), fmt, exif=exif)
    limits = IngestLimits()
    full = ingest.read_image(data, limits)  # the whole image, as shown
    expected = safe_read.fit_image(full, 60, 90)
    reduced, shown = safe_read.decode_image(data, limits, fit=(60, 90))
    assert shown == full.shape[:2] == ((2400, 1500) if orientation in (6, 8) else (1500, 2400))
    assert reduced.shape == expected.shape == (60, 90, 3)
    assert np.abs(reduced.astype(int) - expected).mean() < 1.5


def test_stored_size_is_voted_on_the_shown_size_of_rotated_images(data_root):
    folder = data_root / "rotated"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 20 wide and 10 tall, shown 10 wide and 20 tall
    for i, fmt in enumerate(("JPEG", "PNG")):
        (folder / f"{i}.{fmt.lower()}").write_bytes(encode(Image.fromarray(grey(99, (10, 20))), fmt, exif=exif))
    (folder / "plain.png").write_bytes(png_bytes(grey(99, (10, 20))))
    assert load_dataset("rotated").images.shape == (3, 20, 10, 1)


def test_total_pixel_cap_refuses_an_archive_before_decoding(data_root):
    # nine 5000x5000 headers (25 M pixels each, 225 M in all) and no pixel data: decoding any would fail
    make_zip(data_root / "many.zip", [(f"{i}.png", _bomb_png(5000, 5000)) for i in range(9)])
    with pytest.raises(Rejected, match=r"many\.zip: .*225,000,000 pixels.*200,000,000 \(max_total_pixels\)"):
        load_dataset("many.zip")
    assert list((data_root / "uploads").iterdir()) == []  # the extracted folder is gone


def test_format_is_checked_on_content_not_extension(data_root):
    folder = data_root / "mixed"
    folder.mkdir()
    (folder / "real.txt").write_bytes(png_bytes(grey(7)))  # a PNG with a misleading name
    (folder / "fake.png").write_bytes(b"hello, not an image")
    (folder / "ppm.png").write_bytes(encode(Image.fromarray(grey(5)), "PPM"))  # not allow-listed
    ds = load_dataset("mixed")
    assert ds.ids == ["real.txt"]
    skipped = dict(ds.skipped)
    assert "not an image in an allowed format" in skipped["fake.png"]
    assert "not an image in an allowed format" in skipped["ppm.png"]


def test_empty_truncated_and_non_images_are_skipped_with_reasons(data_root):
    folder = data_root / "broken"
    folder.mkdir()
    good = png_bytes(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8))
    (folder / "good.png").write_bytes(good)
    (folder / "empty.png").write_bytes(b"")
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.md").write_text("# hi")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    ds = load_dataset("broken")
    reasons = dict(ds.skipped)
    assert ds.ids == ["good.png"]
    assert reasons["empty.png"] == "empty file"
    assert reasons["cut.png"].startswith("truncated or corrupt")
    assert "not an image" in reasons["notes.md"] and reasons[".DS_Store"] == "hidden file"


def test_folder_with_no_images_is_an_error(data_root):
    (data_root / "nothing").mkdir()
    (data_root / "nothing" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no usable images.*a.txt"):
        load_dataset("nothing")


def test_modes_are_normalised():
    limits = IngestLimits()
    cmyk = ingest.read_image(encode(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "TIFF"), limits)
    assert cmyk.shape == (4, 4, 3) and (cmyk == 255).all()  # no ink = white
    sixteen = ingest.read_image(png_bytes(np.full((4, 4), 65535, np.uint16)), limits)
    assert sixteen.shape == (4, 4, 1) and (sixteen == 255).all()
    half = ingest.read_image(png_bytes(np.full((4, 4), 32896, np.uint16)), limits)
    assert (half == 128).all()
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert (ingest.read_image(encode(palette, "PNG"), limits) == [255, 0, 0]).all()
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black -> white
    rgba[0, 0] = [0, 0, 255, 255]  # one opaque blue pixel stays blue
    out = ingest.read_image(png_bytes(rgba), limits)
    assert out[0, 0].tolist() == [0, 0, 255] and out[1, 1].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied():
    image = Image.fromarray(np.zeros((2, 4), np.uint8))  # 4 wide, 2 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    out = ingest.read_image(encode(image, "PNG", exif=exif), IngestLimits())
    assert out.shape == (4, 2, 1)


def test_gif_first_frame_only():
    frames = [Image.fromarray(grey(v)) for v in (10, 200)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    out = ingest.read_image(buffer.getvalue(), IngestLimits())
    assert abs(int(out.mean()) - 10) <= 1


def test_mixed_sizes_and_colours_stack_to_the_most_common_size(data_root):
    folder = data_root / "sizes"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(png_bytes(grey(50 * i, (8, 8))))
    (folder / "wide.png").write_bytes(png_bytes(np.full((4, 16, 3), [9, 99, 199], np.uint8)))
    ds = load_dataset("sizes")
    assert ds.images.shape == (4, 8, 8, 3)
    assert (ds.images[0] == 0).all() and (ds.images[3] == [9, 99, 199]).all()
    (folder / "wide.png").write_bytes(png_bytes(np.full((4, 16, 3), 9, np.uint8)))  # RGB but grey
    assert load_dataset("sizes").images.shape == (4, 8, 8, 1)


def test_rerunning_a_folder_gives_the_same_dataset(data_root):
    folder = data_root / "again"
    (folder / "z").mkdir(parents=True)
    (folder / "z" / "1.png").write_bytes(png_bytes(grey(1)))
    (folder / "a.png").write_bytes(png_bytes(grey(2)))
    first, second = load_dataset("again"), load_dataset("again")
    assert first.ids == second.ids == ["a.png", "z/1.png"]
    assert first.fingerprint == second.fingerprint


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize("source", ["../outside", "/etc", "sub/../../outside"])
def test_user_paths_never_leave_the_data_root(data_root, source):
    with pytest.raises(ValueError, match="outside the data root"):
        load_dataset(source)


def test_symlinks_out_of_the_root_are_refused(data_root, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "s.png").write_bytes(png_bytes(grey(4)))
    folder = data_root / "links"
    folder.mkdir()
    (folder / "ok.png").write_bytes(png_bytes(grey(5)))
    (folder / "s.png").symlink_to(outside / "s.png")
    (data_root / "dirlink").symlink_to(outside)
    ds = load_dataset("links")
    assert ds.ids == ["ok.png"] and "outside the data root" in dict(ds.skipped)["s.png"]
    with pytest.raises(ValueError, match="outside the data root"):
        load_dataset("dirlink")


def test_subfolders_as_classes_and_features_beside_images(data_root):
    folder = data_root / "classes"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            (folder / cls / f"{i}.png").write_bytes(png_bytes(grey(i + 10 * len(cls))))
    (folder / "loose.png").write_bytes(png_bytes(grey(3)))
    features = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.save(folder / "features.npy", features)
    ds = load_dataset("classes", subfolders_as_classes=True)
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1]
    assert dict(ds.skipped)["loose.png"] == "not inside a class subfolder"
    np.testing.assert_array_equal(ds.features, features)


def test_features_count_mismatch_is_explained(data_root):
    folder = data_root / "feat"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(grey(1)))
    np.save(folder / "features.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected \(1, d\)"):
        load_dataset("feat")


def test_features_npz_is_matched_by_id(data_root):
    folder = data_root / "featz"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(png_bytes(grey(ord(name[0]))))
    np.savez(folder / "features.npz", features=np.array([[2.0, 0], [1.0, 0]]), ids=np.array(["b.png", "a.png"]))
    assert load_dataset("featz").features[:, 0].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------- arrays


def test_npz_with_labels_class_names_and_channels_first(data_root):
    images = np.random.default_rng(0).random((5, 3, 6, 6))  # floats in [0, 1], channels first
    labels = np.array([0, 1, 1, 0, 1])
    np.savez_compressed(data_root / "arr.npz", x=images, y=labels, class_names=np.array(["no", "yes"]))
    ds = load_dataset("arr.npz")
    assert ds.images.shape == (5, 6, 6, 3) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, np.rint(images.transpose(0, 2, 3, 1) * 255))
    assert ds.class_names == ["no", "yes"] and ds.labels.tolist() == labels.tolist()


def test_npy_with_sibling_labels(data_root):
    np.save(data_root / "imgs.npy", np.zeros((3, 5, 5), np.uint8))
    np.save(data_root / "imgs_labels.npy", np.array([2, 0, 2]))
    ds = load_dataset("imgs.npy", classes=(2,))
    assert ds.images.shape == (2, 5, 5, 1) and ds.class_names == ["0", "1", "2"]


def test_object_arrays_are_never_unpickled(data_root):
    np.save(data_root / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Rejected, match="allow_pickle=False"):
        load_dataset("evil.npy")


def test_absurd_declared_shape_is_rejected_before_allocating(data_root):
    header = {"descr": "<f8", "fortran_order": False, "shape": (10 ** 9, 10 ** 6)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    (data_root / "huge.npy").write_bytes(buffer.getvalue() + b"\0" * 64)
    with pytest.raises(Rejected, match="declared shape"):
        load_dataset("huge.npy")


def test_truncated_npy_is_rejected(data_root):
    np.save(data_root / "cut.npy", np.zeros((10, 4, 4), np.uint8))
    data = (data_root / "cut.npy").read_bytes()
    (data_root / "cut.npy").write_bytes(data[:-20])
    with pytest.raises(Rejected, match="does not match the file size"):
        load_dataset("cut.npy")


@pytest.mark.parametrize("array, message", [
    (np.full((2, 4, 4), 300.0), "expected"), (np.full((2, 4, 4), np.nan), "NaN"),
    (np.zeros((2, 4)), "must be"), (np.zeros((2, 5, 5, 7)), "channels")])
def test_bad_arrays_get_clear_messages(data_root, array, message):
    np.save(data_root / "bad.npy", array)
    with pytest.raises(Rejected, match=message):
        load_dataset("bad.npy")


def test_small_images_keep_their_size_and_say_nothing_about_scaling(data_root):
    pngs = [encode(Image.new("RGB", (40, 30), colour), "PNG") for colour in ((200, 30, 90), (10, 220, 40))]
    make_zip(data_root / "icons.zip", [(f"{i}.png", pngs[i % 2]) for i in range(4)])
    ds = load_dataset("icons.zip")
    assert ds.images.shape == (4, 30, 40, 3)  # never enlarged to max_side
    assert "scaled" not in ds.description
