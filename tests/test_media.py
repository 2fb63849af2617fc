import hashlib
import io
import re
import resource
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from storage.media import MediaRejected, MediaStore, StoredMedia

# ---------------------------------------------------------------- fixtures / builders


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def _files_under(path: Path) -> list[Path]:
    if not path.exists():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file())


def _jpeg_with_exif(size=(800, 600), orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769).update({0x9003: "2026:11:27 14:03:00", 0x9011: "+08:00"})
    exif.get_ifd(0x8825).update(
        {
            1: "N",
            2: (IFDRational(31, 1), IFDRational(14, 1), IFDRational(30, 1)),
            3: "E",
            4: (IFDRational(121, 1), IFDRational(28, 1), IFDRational(12, 1)),
        }
    )
    img = Image.new("RGB", size, (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def _plain_jpeg(size=(640, 480)) -> bytes:
    img = Image.new("RGB", size)
    # Some structure so the JPEG has a real amount of entropy-coded data.
    for x in range(0, size[0], 8):
        for y in range(0, size[1], 8):
            img.putpixel((x, y), ((x * 7) % 256, (y * 3) % 256, (x + y) % 256))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _huge_png_header_only(width: int = 20_000, height: int = 20_000) -> bytes:
    """A syntactically valid PNG that *declares* huge dimensions but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- photos


def test_jpeg_exif_time_gps_and_thumbnail(store: MediaStore):
    data = _jpeg_with_exif(size=(800, 600))
    media = store.store(data, kind_hint="photo", filename="IMG_0001.jpg")

    sha = hashlib.sha256(data).hexdigest()
    assert isinstance(media, StoredMedia)
    assert media.sha256 == sha
    assert media.kind == "photo"
    assert media.mime == "image/jpeg"
    assert media.size == len(data)
    assert media.path == f"evidence/{sha[:2]}/{sha}.jpg"
    assert media.thumb_path == f"thumbs/{sha[:2]}/{sha}.jpg"
    assert (media.width, media.height) == (800, 600)
    assert media.filename == "IMG_0001.jpg"
    assert media.captured_at == "2026-11-27T14:03:00+08:00"
    assert media.gps is not None
    lat, lon = media.gps
    assert lat == pytest.approx(31 + 14 / 60 + 30 / 3600)
    assert lat == pytest.approx(31.241666, abs=1e-5)
    assert lon == pytest.approx(121 + 28 / 60 + 12 / 3600)
    assert lon == pytest.approx(121.47, abs=1e-6)

    # Original stored byte for byte.
    assert store.path_of(media.path).read_bytes() == data
    with Image.open(store.path_of(media.thumb_path)) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= 320
        assert thumb.size == (320, 240)


def test_exif_orientation_applied_to_thumbnail_and_size(store: MediaStore):
    data = _jpeg_with_exif(size=(800, 600), orientation=6)  # rotate 90 degrees when displayed
    media = store.store(data, kind_hint="image")
    assert media.kind == "photo"
    assert (media.width, media.height) == (600, 800)
    with Image.open(store.path_of(media.thumb_path)) as thumb:
        assert thumb.size == (240, 320)


def test_south_west_gps_is_negative(store: MediaStore):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2025:01:02 03:04:05"
    exif.get_ifd(0x8825).update(
        {
            1: "S",
            2: (IFDRational(33, 1), IFDRational(52, 1), IFDRational(4, 1)),
            3: "W",
            4: (IFDRational(70, 1), IFDRational(30, 1), IFDRational(0, 1)),
        }
    )
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), "blue").save(buf, "JPEG", exif=exif)
    media = store.store(buf.getvalue(), kind_hint="photo")
    assert media.captured_at == "2025-01-02T03:04:05"
    assert media.gps == (pytest.approx(-(33 + 52 / 60 + 4 / 3600)), pytest.approx(-70.5))


def test_datetime_fallback_without_original(store: MediaStore):
    exif = Image.Exif()
    exif[0x0132] = "2024:06:30 23:59:58"
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), "green").save(buf, "JPEG", exif=exif)
    media = store.store(buf.getvalue(), kind_hint="photo")
    assert media.captured_at == "2024-06-30T23:59:58"
    assert media.gps is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored(store: MediaStore):
    jpeg = _plain_jpeg((64, 48))
    junk = b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08" + b"\xff\xff\x12\x34" + b"\x00" * 7
    app1 = b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk
    data = jpeg[:2] + app1 + jpeg[2:]
    media = store.store(data, kind_hint="photo")
    assert media.captured_at is None
    assert media.gps is None
    assert (media.width, media.height) == (64, 48)
    assert store.path_of(media.path).read_bytes() == data


def test_png_with_alpha_gets_white_background_thumbnail(store: MediaStore):
    img = Image.new("RGBA", (1000, 400), (0, 0, 0, 0))  # fully transparent
    for x in range(500, 1000):
        for y in range(0, 400, 50):
            img.putpixel((x, y), (0, 0, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()

    media = store.store(data, kind_hint="photo", filename="screenshot.png")
    sha = hashlib.sha256(data).hexdigest()
    assert media.mime == "image/png"
    assert media.path == f"evidence/{sha[:2]}/{sha}.png"
    assert (media.width, media.height) == (1000, 400)
    assert media.captured_at is None and media.gps is None
    with Image.open(store.path_of(media.thumb_path)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.mode == "RGB"
        assert thumb.size == (320, 128)
        r, g, b = thumb.getpixel((10, 10))  # transparent area → white
        assert min(r, g, b) >= 245


def test_palette_gif_with_transparency(store: MediaStore):
    img = Image.new("P", (100, 60), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    buf = io.BytesIO()
    img.save(buf, "GIF", transparency=0)
    media = store.store(buf.getvalue(), kind_hint="photo")
    assert media.mime == "image/gif"
    assert media.path.endswith(".gif")
    with Image.open(store.path_of(media.thumb_path)) as thumb:
        assert thumb.mode == "RGB"
        assert min(thumb.getpixel((5, 5))) >= 245


def test_multi_picture_jpeg_is_accepted_as_jpeg(store: MediaStore):
    first = Image.new("RGB", (64, 48), "red")
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), "blue")])
    media = store.store(buf.getvalue(), kind_hint="photo")
    assert media.mime == "image/jpeg"
    assert media.path.endswith(".jpg")


def test_text_renamed_jpg_is_rejected(store: MediaStore, tmp_path: Path):
    data = "这是一段文字,不是图片。\nhello world\n".encode() * 10
    with pytest.raises(MediaRejected) as info:
        store.store(data, kind_hint="photo", filename="photo.jpg", mime="image/jpeg")
    exc = info.value
    assert exc.user_message == "图片文件无法识别(可能不是真正的图片),请重新拍照发送。"
    assert "not a recognised image" in exc.detail
    assert _files_under(tmp_path / "media" / "evidence") == []
    assert _files_under(tmp_path / "media" / "thumbs") == []


def test_huge_declared_png_rejected_without_decoding(store: MediaStore, tmp_path: Path):
    data = _huge_png_header_only()
    assert len(data) < 200
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(MediaRejected) as info:
        store.store(data, kind_hint="photo", filename="big.png")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    assert "像素" in info.value.user_message
    assert "pixels" in info.value.detail
    # ru_maxrss is KiB on Linux, bytes on macOS; decoding would need ~1.2 GB.
    scale = 1 if sys.platform == "darwin" else 1024
    assert (rss_after - rss_before) * scale < 100 * 1024 * 1024
    assert _files_under(tmp_path / "media") == []


def test_pixel_limit_does_not_depend_on_pillow_global(store: MediaStore, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(MediaRejected) as info:
        store.store(_huge_png_header_only(), kind_hint="photo")
    assert "像素" in info.value.user_message
    assert _files_under(tmp_path / "media") == []


def test_configured_pixel_limit_and_global_untouched(tmp_path: Path):
    before = Image.MAX_IMAGE_PIXELS
    small = MediaStore(tmp_path, max_image_pixels=1000)
    with pytest.raises(MediaRejected) as info:
        small.store(_plain_jpeg((100, 100)), kind_hint="photo")
    assert "像素" in info.value.user_message
    assert "limit is 1000" in info.value.detail
    ok = small.store(_plain_jpeg((40, 25)), kind_hint="photo")
    assert (ok.width, ok.height) == (40, 25)
    assert Image.MAX_IMAGE_PIXELS == before


def test_truncated_jpeg_rejected(store: MediaStore, tmp_path: Path):
    data = _plain_jpeg((640, 480))
    truncated = data[: len(data) // 2]
    with pytest.raises(MediaRejected) as info:
        store.store(truncated, kind_hint="photo")
    assert "损坏" in info.value.user_message
    assert _files_under(tmp_path / "media" / "evidence") == []


def test_corrupt_png_rejected(store: MediaStore):
    buf = io.BytesIO()
    Image.new("RGB", (50, 50), "white").save(buf, "PNG")
    good = buf.getvalue()
    idat = good.index(b"IDAT")
    payload = bytearray(good)
    payload[idat + 6] ^= 0xFF  # compressed pixel data → CRC mismatch
    header = bytearray(good)
    header[idat] ^= 0xFF  # chunk type → Pillow cannot even identify it
    for data in (payload, header):
        with pytest.raises(MediaRejected) as info:
            store.store(bytes(data), kind_hint="photo")
        assert "损坏" in info.value.user_message


def test_disallowed_image_format_rejected(tmp_path: Path):
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buf, "TIFF")
    with pytest.raises(MediaRejected) as info:
        MediaStore(tmp_path).store(buf.getvalue(), kind_hint="photo")
    assert "格式" in info.value.user_message
    assert "TIFF" in info.value.detail

    only_png = MediaStore(tmp_path, allowed_image_formats=("PNG",))
    with pytest.raises(MediaRejected):
        only_png.store(_plain_jpeg((10, 10)), kind_hint="photo")
    assert _files_under(tmp_path / "evidence") == []


# ---------------------------------------------------------------- size limits


def test_oversized_and_empty_rejected(tmp_path: Path):
    small = MediaStore(tmp_path, max_bytes=1024)
    big = b"%PDF-1.4\n" + b"x" * 2000
    for call in (
        lambda: small.store(big, kind_hint="file", filename="a.pdf"),
        lambda: small.store(big, kind_hint="photo"),
        lambda: small.stage(big),
    ):
        with pytest.raises(MediaRejected) as info:
            call()
        assert "太大" in info.value.user_message
        assert "limit is 1024" in info.value.detail
    for call in (
        lambda: small.store(b"", kind_hint="voice"),
        lambda: small.store(b"", kind_hint="photo"),
        lambda: small.stage(b""),
    ):
        with pytest.raises(MediaRejected) as info:
            call()
        assert "为空" in info.value.user_message
    assert _files_under(tmp_path) == []


def test_unknown_kind_hint_is_programming_error(store: MediaStore):
    with pytest.raises(ValueError):
        store.store(b"abc", kind_hint="sticker")


# ---------------------------------------------------------------- other files


@pytest.mark.parametrize(
    "data, filename",
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "invoice.pdf"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "notes.txt"),
        (b"#!/bin/sh\nrm -rf /\n", "voice.amr"),
        (b"\xcf\xfa\xed\xfe" + b"\x00" * 60, "tool"),
        (b"echo hello\r\n", "run.bat"),
    ],
)
def test_executables_rejected(store: MediaStore, tmp_path: Path, data: bytes, filename: str):
    with pytest.raises(MediaRejected) as info:
        store.store(data, kind_hint="file", filename=filename)
    assert "可执行" in info.value.user_message
    assert _files_under(tmp_path / "media") == []


def test_pdf_stored_as_file(store: MediaStore):
    data = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    media = store.store(data, kind_hint="file", filename="报价单 v2.PDF", mime="application/octet-stream")
    sha = hashlib.sha256(data).hexdigest()
    assert media.kind == "file"
    assert media.mime == "application/pdf"
    assert media.path == f"evidence/{sha[:2]}/{sha}.pdf"
    assert media.thumb_path is None
    assert media.width is None and media.captured_at is None
    assert media.filename == "报价单 v2.PDF"
    assert store.path_of(media.path).read_bytes() == data


def test_voice_amr_and_silk(store: MediaStore):
    amr = store.store(b"#!AMR\n" + b"\x3c" * 50, kind_hint="voice")
    assert amr.kind == "voice"
    assert amr.mime == "audio/amr"
    assert amr.path.endswith(".amr")
    silk = store.store(b"\x02#!SILK_V3" + b"\x01" * 40, kind_hint="voice", filename="v.silk")
    assert silk.mime == "audio/silk"
    assert silk.path.endswith(".silk")


def test_video_mp4_sniffed(store: MediaStore):
    data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    media = store.store(data, kind_hint="video", filename="clip.mp4", mime="video/whatever")
    assert media.kind == "video"
    assert media.mime == "video/mp4"
    assert media.path.endswith(".mp4")


def test_docx_detected_from_zip_contents(store: MediaStore):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    media = store.store(buf.getvalue(), kind_hint="file", filename="合同")
    assert media.mime == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert media.path.endswith(".docx")


def test_unknown_content_uses_given_mime_and_safe_extension(store: MediaStore):
    media = store.store(b"plain text notes", kind_hint="file", filename="notes.TXT", mime="text/plain")
    assert media.mime == "text/plain"
    assert media.path.endswith(".txt")

    odd = store.store(b"more plain text", kind_hint="file", filename="../../weird.t$t", mime="not a mime")
    assert odd.mime == "application/octet-stream"
    assert re.fullmatch(r"evidence/[0-9a-f]{2}/[0-9a-f]{64}\.bin", odd.path)
    assert odd.filename == "weird.t$t"
    assert store.path_of(odd.path).is_file()


# ---------------------------------------------------------------- staging


def test_stage_read_discard_round_trip(store: MediaStore, tmp_path: Path):
    data = b"raw bytes from the platform \x00\x01\x02"
    sha = store.stage(data)
    assert sha == hashlib.sha256(data).hexdigest()
    staged = tmp_path / "media" / "incoming" / sha
    assert staged.read_bytes() == data
    assert store.read_staged(sha) == data
    assert store.stage(data) == sha  # idempotent
    assert [p.name for p in _files_under(tmp_path / "media" / "incoming")] == [sha]

    store.discard_staged(sha)
    assert not staged.exists()
    store.discard_staged(sha)  # already gone: fine
    with pytest.raises(MediaRejected) as info:
        store.read_staged(sha)
    assert "失效" in info.value.user_message


def test_read_staged_detects_corruption(store: MediaStore, tmp_path: Path):
    sha = store.stage(b"original")
    (tmp_path / "media" / "incoming" / sha).write_bytes(b"tampered")
    with pytest.raises(MediaRejected) as info:
        store.read_staged(sha)
    assert "checksum" in info.value.detail


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "../../" + "a" * 58,
        "a" * 63,
        "g" * 64,
        "A" * 64,
        "a" * 64 + "/",
        "a" * 64 + "\n",
        "",
    ],
)
def test_staged_ids_are_validated(store: MediaStore, bad: str):
    with pytest.raises(MediaRejected):
        store.read_staged(bad)
    with pytest.raises(MediaRejected):
        store.discard_staged(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "/etc/passwd",
        "evidence/../../outside.txt",
        "evidence/ab/../../../x",
        "evidence\\..\\..\\x",
        "thumbs/./x.jpg",
        "evidence",
        "secrets/ab/x.jpg",
        "evidence/ab/x\x00.jpg",
        "",
    ],
)
def test_path_of_rejects_traversal(store: MediaStore, bad: str):
    with pytest.raises(MediaRejected):
        store.path_of(bad)


def test_path_of_resolves_under_root(store: MediaStore, tmp_path: Path):
    media = store.store(b"%PDF-1.4\n%%EOF\n", kind_hint="file", filename="x.pdf")
    resolved = store.path_of(media.path)
    assert resolved.is_file()
    assert resolved.is_relative_to((tmp_path / "media").resolve())


# ---------------------------------------------------------------- idempotence / generated


def test_store_is_idempotent_and_does_not_rewrite(store: MediaStore, tmp_path: Path):
    data = _jpeg_with_exif(size=(400, 300))
    first = store.store(data, kind_hint="photo", filename="a.jpg")
    evidence = store.path_of(first.path)
    thumb = store.path_of(first.thumb_path)
    stats = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (evidence, thumb)]

    time.sleep(0.01)
    second = store.store(data, kind_hint="photo", filename="a.jpg")
    assert second == first
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (evidence, thumb)] == stats
    assert len(_files_under(tmp_path / "media" / "evidence")) == 1
    assert len(_files_under(tmp_path / "media" / "thumbs")) == 1

    doc = store.store(b"%PDF-1.4\n%%EOF\n", kind_hint="file", filename="x.pdf")
    doc_stat = store.path_of(doc.path).stat()
    assert store.store(b"%PDF-1.4\n%%EOF\n", kind_hint="file", filename="x.pdf") == doc
    assert store.path_of(doc.path).stat().st_mtime_ns == doc_stat.st_mtime_ns
    # No temporary files left behind anywhere.
    assert not [p for p in _files_under(tmp_path / "media") if p.name.startswith(".tmp")]


def test_store_generated(store: MediaStore, tmp_path: Path):
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(buf, "PNG")
    data = buf.getvalue()
    sha = store.store_generated(data, ".png")
    assert sha == hashlib.sha256(data).hexdigest()
    path = tmp_path / "media" / "generated" / f"{sha}.png"
    assert path.read_bytes() == data
    assert store.path_of(f"generated/{sha}.png") == path.resolve()
    assert store.store_generated(data, "png") == sha
    for bad in ("../png", "p/ng", "", "waytoolongsuffix"):
        with pytest.raises(ValueError):
            store.store_generated(data, bad)


def test_a_repeated_store_of_the_same_bytes_does_not_decode_again(store: MediaStore, monkeypatch):
    data = _jpeg_with_exif()
    calls = []
    real = MediaStore._store_photo

    def counting(self, *args, **kwargs):
        calls.append(args[1])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MediaStore, "_store_photo", counting)
    first = store.store(data, kind_hint="photo", filename="a.jpg")
    second = store.store(data, kind_hint="photo", filename="a.jpg")
    assert first == second and len(calls) == 1


def test_a_remembered_rejection_is_raised_again(store: MediaStore):
    data = "不是图片".encode() * 10
    with pytest.raises(MediaRejected) as first:
        store.store(data, kind_hint="photo", filename="x.jpg")
    with pytest.raises(MediaRejected) as second:
        store.store(data, kind_hint="photo", filename="x.jpg")
    assert first.value.user_message == second.value.user_message and first.value is not second.value
