"""Evidence file store.

Everything here is synchronous and does blocking file I/O and image decoding;
async callers should run it through ``asyncio.to_thread``.

Layout under the store root::

    incoming/<sha256>                 raw bytes staged before a message is acknowledged
    evidence/<sha[:2]>/<sha>.<ext>    original bytes, never modified
    thumbs/<sha[:2]>/<sha>.jpg        JPEG thumbnails (photos only)
    generated/<sha>.<suffix>          images produced by the bot itself (charts)

Files are content addressed, so storing the same bytes again is a no-op, and
every write goes through a temporary file in the target directory followed by
``os.replace``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import math
import os
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["MediaRejected", "MediaStore", "StoredMedia"]

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_EXT_RE = re.compile(r"[A-Za-z0-9]{1,8}")
_MIME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_OFFSET_RE = re.compile(r"[+-]\d{2}:\d{2}")

_AREAS = ("incoming", "evidence", "thumbs", "generated")
_FILE_MODE = 0o640

# EXIF tags used below.
_TAG_DATETIME = 0x0132
_TAG_EXIF_IFD = 0x8769
_TAG_GPS_IFD = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4

_IMAGE_EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
_IMAGE_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}

_KIND_ALIASES = {"photo": "photo", "image": "photo", "voice": "voice", "video": "video", "file": "file"}

# Extensions of things that run when double-clicked but have no reliable magic bytes.
_DANGEROUS_EXTS = frozenset(
    {
        "exe", "dll", "com", "scr", "msi", "msp", "pif", "cpl", "sys", "drv",
        "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
        "lnk", "reg", "sh", "bash", "jar", "apk", "app", "elf", "so", "dylib",
    }
)  # fmt: skip

_MSG_EMPTY = "文件内容为空,请重新发送。"
_MSG_TOO_BIG = "文件太大(超过 {mb} MB),请压缩后重新发送。"
_MSG_NOT_IMAGE = "图片文件无法识别(可能不是真正的图片),请重新拍照发送。"
_MSG_IMAGE_FORMAT = "暂不支持这种图片格式(如 HEIC/TIFF),请在手机设置中改为 JPG 格式或截图后重新发送。"
_MSG_IMAGE_PIXELS = "图片像素尺寸过大,请缩小图片或截图后重新发送。"
_MSG_IMAGE_CORRUPT = "图片文件已损坏或不完整,请重新拍照发送。"
_MSG_EXECUTABLE = "出于安全考虑,不接收可执行程序或脚本文件,请改发图片、文档或压缩包。"
_MSG_MISSING = "文件已失效,请重新发送。"
_MSG_BAD_PATH = "文件路径无效。"


_REMEMBERED_OUTCOMES = 256  # recent store() outcomes kept (see MediaStore.store)


class MediaRejected(Exception):
    """Raised when incoming media cannot be accepted.

    ``user_message`` is short Simplified Chinese meant for the chat user;
    ``detail`` is precise English for logs and administrators.
    """

    def __init__(self, user_message: str, detail: str):
        super().__init__(detail)
        self.user_message = user_message
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class StoredMedia:
    sha256: str
    kind: str  # "photo" | "voice" | "video" | "file"
    mime: str
    size: int
    path: str  # relative to the store root
    thumb_path: str | None  # photos only
    width: int | None = None  # displayed size, i.e. after EXIF orientation
    height: int | None = None
    captured_at: str | None = None  # ISO 8601, with offset when EXIF records one
    gps: tuple[float, float] | None = None  # (lat, lon), south/west negative
    filename: str = ""

    def found_attributes(self) -> dict[str, Any]:
        """What the file itself tells (capture time, GPS, pixel size), only where known."""
        found = {
            "captured_at": self.captured_at,
            "gps": list(self.gps) if self.gps else None,
            "width": self.width,
            "height": self.height,
        }
        return {key: value for key, value in found.items() if value is not None}


class MediaStore:
    def __init__(
        self,
        root: Path,
        *,
        max_image_pixels: int = 40_000_000,
        max_bytes: int = 20 * 1024 * 1024,
        thumb_size: int = 320,
        allowed_image_formats: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP"),
        max_decoded_bytes: int = 100_000_000,
        decode_concurrency: int = 2,
    ):
        if max_image_pixels <= 0 or max_bytes <= 0 or thumb_size <= 0:
            raise ValueError("limits must be positive")
        if max_decoded_bytes <= 0 or decode_concurrency <= 0:
            raise ValueError("limits must be positive")
        # Memory an image takes once decoded, and how many are decoded at once: their product bounds
        # what photos can take (plus a thumbnail each). Callers run store() in threads.
        self.max_decoded_bytes = int(max_decoded_bytes)
        self._decode_slots = threading.BoundedSemaphore(int(decode_concurrency))
        self.root = Path(root).resolve()
        self.max_image_pixels = int(max_image_pixels)
        self.max_bytes = int(max_bytes)
        self.thumb_size = int(thumb_size)
        self.allowed_image_formats = tuple(f.upper() for f in allowed_image_formats)
        self._outcomes: OrderedDict[tuple[str, str, str, str], StoredMedia | MediaRejected] = OrderedDict()
        self._outcomes_lock = threading.Lock()

    # ------------------------------------------------------------------ staging

    def stage(self, data: bytes) -> str:
        """Durably write raw incoming bytes to ``incoming/<sha256>``; return the sha256."""
        self._check_size(data)
        sha = hashlib.sha256(data).hexdigest()
        self._write_once(f"incoming/{sha}", data)
        return sha

    def read_staged(self, sha256: str) -> bytes:
        sha = self._check_sha(sha256)
        path = self.root / "incoming" / sha
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MediaRejected(_MSG_MISSING, f"staged file {sha} does not exist") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise MediaRejected(_MSG_MISSING, f"staged file {sha} is corrupt (checksum mismatch)")
        return data

    def discard_staged(self, sha256: str) -> None:
        sha = self._check_sha(sha256)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "incoming" / sha).unlink()

    # ------------------------------------------------------------------ storing

    def store(self, data: bytes, *, kind_hint: str, filename: str = "", mime: str = "") -> StoredMedia:
        """Verify and store; the outcome (result or rejection) of recent calls is remembered.

        Decoding a large photo takes a while; the inbox verifies an attachment before the
        handler's transaction, so that the handler's own call (same bytes) is instant and no
        database lock is held while pixels are decoded.
        """
        kind = _KIND_ALIASES.get((kind_hint or "").strip().lower())
        if kind is None:
            raise ValueError(f"unknown kind_hint {kind_hint!r}")
        self._check_size(data)
        filename = _clean_filename(filename)
        sha = hashlib.sha256(data).hexdigest()
        key = (sha, kind, filename, mime)
        with self._outcomes_lock:
            outcome = self._outcomes.get(key)
            if outcome is not None:
                self._outcomes.move_to_end(key)
        if outcome is None:
            try:
                outcome = self._store_photo(data, sha, filename) if kind == "photo" else self._store_file(
                    data, sha, kind, filename, mime
                )
            except MediaRejected as exc:
                # A fresh exception without the traceback: the traceback's frames would keep the
                # decoded pixels of a refused image alive for as long as the outcome is remembered.
                outcome = MediaRejected(exc.user_message, exc.detail)
            with self._outcomes_lock:
                self._outcomes[key] = outcome
                while len(self._outcomes) > _REMEMBERED_OUTCOMES:
                    self._outcomes.popitem(last=False)
        if isinstance(outcome, MediaRejected):
            raise MediaRejected(outcome.user_message, outcome.detail)
        return outcome

    def store_generated(self, data: bytes, suffix: str) -> str:
        """Store an image the bot produced itself at ``generated/<sha>.<suffix>``."""
        suffix = (suffix or "").lstrip(".")
        if not _EXT_RE.fullmatch(suffix):
            raise ValueError(f"unsafe suffix {suffix!r}")
        if not data:
            raise ValueError("generated media is empty")
        sha = hashlib.sha256(data).hexdigest()
        self._write_once(f"generated/{sha}.{suffix.lower()}", data)
        return sha

    def remove_unreferenced(self, keep: set[str], *, older_than: float) -> int:
        """Delete stored files whose content hash is not in ``keep`` and that were written before
        ``older_than`` (a POSIX time); return how many were removed.

        Files are named by their sha256 in every area, so a hash names an original, its thumbnail
        and a staged upload alike. The age guard spares files written by work still in flight.
        """
        removed = 0
        for area in _AREAS:
            base = self.root / area
            if not base.is_dir():
                continue
            for path in base.rglob("*"):
                sha = path.name.split(".", 1)[0]
                if not _SHA_RE.fullmatch(sha) or sha in keep or path.is_symlink() or not path.is_file():
                    continue
                try:
                    if path.stat().st_mtime >= older_than:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed += 1
        return removed

    def path_of(self, relative: str) -> Path:
        """Map a stored relative path (as found in ``StoredMedia``) to an absolute path under root."""
        if not isinstance(relative, str) or not relative or "\x00" in relative or "\\" in relative:
            raise MediaRejected(_MSG_BAD_PATH, f"invalid stored path {relative!r}")
        parts = relative.split("/")
        if len(parts) < 2 or parts[0] not in _AREAS or any(not p or p.startswith(".") for p in parts):
            raise MediaRejected(_MSG_BAD_PATH, f"stored path {relative!r} escapes or is outside the store")
        return self.root.joinpath(*parts)

    # ------------------------------------------------------------------ photos

    def _store_photo(self, data: bytes, sha: str, filename: str) -> StoredMedia:
        fmt = self._verify_image(data)
        rel = f"evidence/{sha[:2]}/{sha}.{_IMAGE_EXT[fmt]}"
        thumb_rel = f"thumbs/{sha[:2]}/{sha}.jpg"
        with self._decode_slots:
            try:
                captured_at, gps, width, height, thumb = self._decode_photo(data, thumb_rel)
            finally:
                _release_memory()
        # Thumbnail first: once the original exists, its thumbnail does too.
        if thumb is not None:
            self._write_once(thumb_rel, thumb)
        self._write_once(rel, data)
        return StoredMedia(
            sha256=sha,
            kind="photo",
            mime=_IMAGE_MIME[fmt],
            size=len(data),
            path=rel,
            thumb_path=thumb_rel,
            width=width,
            height=height,
            captured_at=captured_at,
            gps=gps,
            filename=filename,
        )

    def _decode_photo(
        self, data: bytes, thumb_rel: str
    ) -> tuple[str | None, tuple[float, float] | None, int, int, bytes | None]:
        """Decode within the memory cap: EXIF, displayed size and (when missing) the thumbnail.

        JPEG is decoded at the smallest DCT scale (1/2 … 1/8) that still covers the thumbnail
        (``Image.draft``), so a 40-megapixel photo costs about a sixty-fourth of its full size;
        other formats are refused when their full decoded size exceeds ``max_decoded_bytes``.
        Every intermediate image is closed as soon as it is no longer needed.
        """
        try:
            img = Image.open(io.BytesIO(data), formats=self.allowed_image_formats)
        except Exception as exc:  # any parser failure means a bad image
            raise self._image_error(exc, data) from exc
        with img:
            self._check_pixels(*img.size)
            full_width, full_height = img.size
            if img.format == "JPEG":
                with contextlib.suppress(Exception):
                    img.draft(img.mode if img.mode in ("RGB", "L") else "RGB", (self.thumb_size, self.thumb_size))
            # Before anything that may decode: reading a PNG's EXIF loads the whole image.
            self._check_decoded_bytes(img)
            captured_at, gps = _exif_metadata(img)
            orientation = _orientation(img)
            width, height = (full_height, full_width) if orientation in (5, 6, 7, 8) else (full_width, full_height)
            if self.path_of(thumb_rel).is_file():
                # Verified already (header and structure); the pixels are not needed again.
                return captured_at, gps, width, height, None
            try:
                img.load()
            except MediaRejected:
                raise
            except Exception as exc:
                raise self._image_error(exc, data) from exc
            # Shrink in place before any copy (exif_transpose, mode conversion) is made.
            img.thumbnail((self.thumb_size, self.thumb_size), Image.Resampling.LANCZOS)
            try:
                shown = ImageOps.exif_transpose(img)
            except Exception:  # broken orientation data: keep pixels as they are
                shown = img
            try:
                thumb = self._thumbnail(shown)
            finally:
                if shown is not img:
                    shown.close()
        return captured_at, gps, width, height, thumb

    def _check_decoded_bytes(self, img: Image.Image) -> None:
        """Refuse an image whose decoded pixels (width × height × bytes per pixel) exceed the cap.

        Pillow keeps multi-band images at four bytes per pixel (RGB included), 16-bit grey at two,
        and 1-bit, grey and palette images at one, so that is what is counted.
        """
        width, height = img.size
        decoded = width * height * _bytes_per_pixel(img.mode)
        if decoded > self.max_decoded_bytes:
            raise MediaRejected(
                _MSG_IMAGE_PIXELS,
                f"image is {width}x{height} {img.mode}: {decoded} bytes decoded, limit is {self.max_decoded_bytes}",
            )

    def _verify_image(self, data: bytes) -> str:
        """Identify and structurally verify the image from its header; return the normalised format."""
        try:
            with Image.open(io.BytesIO(data), formats=self.allowed_image_formats) as img:
                fmt = _normalise_format(img.format)
                if fmt not in self.allowed_image_formats or fmt not in _IMAGE_EXT:
                    raise MediaRejected(_MSG_IMAGE_FORMAT, f"image format {img.format!r} is not allowed")
                self._check_pixels(*img.size)
                img.verify()
        except MediaRejected:
            raise
        except Exception as exc:
            raise self._image_error(exc, data) from exc
        return fmt

    def _check_pixels(self, width: int, height: int) -> None:
        limit = self.max_image_pixels
        # Also honour the process-wide Pillow limit (read only, never changed here):
        # anything that would trigger DecompressionBombWarning is rejected too.
        global_limit = Image.MAX_IMAGE_PIXELS
        if global_limit:
            limit = min(limit, int(global_limit))
        if width <= 0 or height <= 0:
            raise MediaRejected(_MSG_IMAGE_CORRUPT, f"image declares invalid size {width}x{height}")
        if width * height > limit:
            raise MediaRejected(
                _MSG_IMAGE_PIXELS,
                f"image is {width}x{height} = {width * height} pixels, limit is {limit}",
            )

    def _image_error(self, exc: BaseException, data: bytes) -> MediaRejected:
        if isinstance(exc, MediaRejected):
            return exc
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            return MediaRejected(_MSG_IMAGE_PIXELS, f"decompression bomb: {exc}")
        if isinstance(exc, UnidentifiedImageError):
            other = _sniff_unsupported_image(data)
            if other:
                return MediaRejected(_MSG_IMAGE_FORMAT, f"image format {other} is not allowed")
            if _looks_like_allowed_image(data, self.allowed_image_formats):
                return MediaRejected(
                    _MSG_IMAGE_CORRUPT, f"image header is damaged; leading bytes {data[:8]!r}"
                )
            return MediaRejected(
                _MSG_NOT_IMAGE,
                f"not a recognised image (allowed: {', '.join(self.allowed_image_formats)}); "
                f"leading bytes {data[:8]!r}",
            )
        return MediaRejected(_MSG_IMAGE_CORRUPT, f"image failed to decode: {type(exc).__name__}: {exc}")

    def _thumbnail(self, img: Image.Image) -> bytes:
        thumb = _to_jpeg_mode(img)
        if thumb is img:
            thumb = img.copy()
        try:
            thumb.thumbnail((self.thumb_size, self.thumb_size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=82, optimize=True)
            return buf.getvalue()
        finally:
            thumb.close()

    # ------------------------------------------------------------------ other files

    def _store_file(self, data: bytes, sha: str, kind: str, filename: str, mime: str) -> StoredMedia:
        name_ext = _filename_ext(filename)
        executable = _sniff_executable(data)
        if executable:
            raise MediaRejected(_MSG_EXECUTABLE, f"executable content rejected ({executable})")
        if name_ext in _DANGEROUS_EXTS:
            raise MediaRejected(_MSG_EXECUTABLE, f"file extension .{name_ext} is not accepted")
        sniffed = _sniff_mime(data, name_ext)
        if sniffed:
            final_mime, sniff_ext = sniffed
        else:
            final_mime = mime.strip().lower() if mime and _MIME_RE.fullmatch(mime.strip()) else ""
            final_mime = final_mime or "application/octet-stream"
            sniff_ext = None
        ext = name_ext or sniff_ext or "bin"
        rel = f"evidence/{sha[:2]}/{sha}.{ext}"
        self._write_once(rel, data)
        return StoredMedia(
            sha256=sha,
            kind=kind,
            mime=final_mime,
            size=len(data),
            path=rel,
            thumb_path=None,
            filename=filename,
        )

    # ------------------------------------------------------------------ plumbing

    def _check_size(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("media data must be bytes")
        if len(data) == 0:
            raise MediaRejected(_MSG_EMPTY, "media is empty (0 bytes)")
        if len(data) > self.max_bytes:
            mb = max(1, self.max_bytes // (1024 * 1024))
            raise MediaRejected(
                _MSG_TOO_BIG.format(mb=mb),
                f"media is {len(data)} bytes, limit is {self.max_bytes}",
            )

    @staticmethod
    def _check_sha(sha256: str) -> str:
        if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256):
            raise MediaRejected(_MSG_MISSING, f"invalid staged id {sha256!r} (expected 64 lowercase hex)")
        return sha256

    def _write_once(self, relative: str, data: bytes) -> None:
        """Atomically write ``data`` at ``relative`` unless an identical-size file is already there."""
        target = self.path_of(relative)
        try:
            if target.stat().st_size == len(data):
                return
        except FileNotFoundError:
            pass
        self._ensure_dir(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    def _ensure_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        rel = directory.relative_to(self.root)
        current = self.root
        if not current.is_dir():
            current.mkdir(parents=True, exist_ok=True)
            _fsync_dir(current.parent)
        for part in rel.parts:
            parent, current = current, current / part
            if not current.is_dir():
                current.mkdir(exist_ok=True)
                _fsync_dir(parent)


# ---------------------------------------------------------------------- helpers


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _clean_filename(filename: str) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return name[:255]


def _filename_ext(filename: str) -> str | None:
    if "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1]
    return ext.lower() if _EXT_RE.fullmatch(ext) else None


def _normalise_format(fmt: str | None) -> str:
    fmt = (fmt or "").upper()
    # Multi-picture JPEGs (portrait / depth photos from phones) are JPEG files.
    return "JPEG" if fmt == "MPO" else fmt


def _looks_like_allowed_image(data: bytes, allowed: tuple[str, ...]) -> bool:
    signatures = {
        "JPEG": data[:3] == b"\xff\xd8\xff",
        "PNG": data[:8] == b"\x89PNG\r\n\x1a\n",
        "GIF": data[:6] in (b"GIF87a", b"GIF89a"),
        "WEBP": data[:4] == b"RIFF" and data[8:12] == b"WEBP",
        "BMP": data[:2] == b"BM" and len(data) > 26 and data[6:10] == b"\x00\x00\x00\x00",
    }
    return any(signatures.get(fmt, False) for fmt in allowed)


def _sniff_unsupported_image(data: bytes) -> str | None:
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
        return "HEIC"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if data[:2] == b"\xff\xd8":
        return None  # a JPEG that failed to parse is corrupt, not unsupported
    if data[:4] == b"8BPS":
        return "PSD"
    return None


def _sniff_executable(data: bytes) -> str | None:
    head = data[:16]
    if head[:2] == b"MZ":
        return "Windows PE (MZ)"
    if head[:4] == b"\x7fELF":
        return "ELF"
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ):
        return "Mach-O"
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "Mach-O universal / Java class"
    if head[:4] == b"dex\n":
        return "Android DEX"
    if head[:2] == b"#!" and not (head.startswith(b"#!AMR") or head.startswith(b"#!SILK")):
        return "script (#!)"
    return None


_OFFICE_ZIP = {
    "word/": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xl/": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "ppt/": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
}
_OFFICE_OLE = {
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}


def _sniff_mime(data: bytes, name_ext: str | None) -> tuple[str, str] | None:
    """Guess (mime, ext) from magic bytes; None when unrecognised."""
    head = data[:64]
    if head.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb", "awb"
    if head.startswith(b"#!AMR"):
        return "audio/amr", "amr"
    if head.startswith(b"#!SILK") or head.startswith(b"\x02#!SILK"):
        return "audio/silk", "silk"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] in (0xFB, 0xFA, 0xF3, 0xF2)):
        return "audio/mpeg", "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] in (0xF1, 0xF9):
        return "audio/aac", "aac"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4", "m4a"
        if brand == b"qt  ":
            return "video/quicktime", "mov"
        if brand.startswith(b"3g2"):
            return "video/3gpp2", "3g2"
        if brand.startswith(b"3gp"):
            return "video/3gpp", "3gp"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "image/heic", "heic"
        if brand in (b"avif", b"avis"):
            return "image/avif", "avif"
        return "video/mp4", "mp4"
    if head[:4] == b"RIFF":
        if head[8:12] == b"WAVE":
            return "audio/wav", "wav"
        if head[8:12] == b"AVI ":
            return "video/x-msvideo", "avi"
        if head[8:12] == b"WEBP":
            return "image/webp", "webp"
    if head.startswith(b"OggS"):
        return "audio/ogg", "ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac", "flac"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return ("video/webm", "webm") if b"webm" in head else ("video/x-matroska", "mkv")
    if head.startswith(b"%PDF"):
        return "application/pdf", "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(data, name_ext)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        if name_ext in _OFFICE_OLE:
            return _OFFICE_OLE[name_ext], name_ext
        return "application/vnd.ms-office", "doc"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", "gif"
    if head.startswith(b"Rar!\x1a\x07"):
        return "application/vnd.rar", "rar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "application/x-7z-compressed", "7z"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip", "gz"
    return None


def _sniff_zip(data: bytes, name_ext: str | None) -> tuple[str, str]:
    for mime, ext in _OFFICE_ZIP.values():
        if name_ext == ext:
            return mime, ext
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except Exception:  # damaged archives are still stored as zip
        names = []
    if "[Content_Types].xml" in names:
        for prefix, (mime, ext) in _OFFICE_ZIP.items():
            if any(n.startswith(prefix) for n in names):
                return mime, ext
    return "application/zip", "zip"


def _bytes_per_pixel(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # broken EXIF: as stored
        return 1


_LIBC: Any = None
with contextlib.suppress(Exception):
    _name = ctypes.util.find_library("c")
    if _name:
        _LIBC = ctypes.CDLL(_name)
        _LIBC.malloc_trim  # noqa: B018  (glibc only; elsewhere there is nothing to do)


def _release_memory() -> None:
    """Give freed pixel buffers back to the operating system (glibc keeps them in its arenas)."""
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.malloc_trim(0)


def _to_jpeg_mode(img: Image.Image) -> Image.Image:
    """Return an image in a mode JPEG can encode (L or RGB); transparency goes onto white."""
    mode = img.mode
    if mode in ("RGB", "L"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I;16") or mode == "I":
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if mode == "F":
        return img.convert("L")
    return img.convert("RGB")


def _exif_metadata(img: Image.Image) -> tuple[str | None, tuple[float, float] | None]:
    try:
        exif = img.getexif()
    except Exception:  # broken EXIF is ignored
        return None, None
    captured_at = None
    gps = None
    try:
        captured_at = _exif_datetime(exif)
    except Exception:
        captured_at = None
    try:
        gps = _exif_gps(exif)
    except Exception:
        gps = None
    return captured_at, gps


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip() or None


def _exif_datetime(exif: Image.Exif) -> str | None:
    sub = exif.get_ifd(_TAG_EXIF_IFD)
    candidates = (
        (sub.get(_TAG_DATETIME_ORIGINAL), sub.get(_TAG_OFFSET_TIME_ORIGINAL) or sub.get(_TAG_OFFSET_TIME)),
        (exif.get(_TAG_DATETIME), sub.get(_TAG_OFFSET_TIME)),
    )
    for raw, raw_offset in candidates:
        text = _exif_text(raw)
        if not text:
            continue
        try:
            moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        iso = moment.isoformat()
        offset = _exif_text(raw_offset)
        if offset and _OFFSET_RE.fullmatch(offset):
            iso += offset
        return iso
    return None


def _gps_coordinate(value: Any, ref: object, positive: str, negative: str, bound: float) -> float | None:
    # ``value`` is what the camera wrote: Pillow types EXIF values as Any (rationals, tuples of them).
    ref_text = (_exif_text(ref) or positive).upper()[:1]
    if ref_text not in (positive, negative):
        return None
    if isinstance(value, (tuple, list)):
        parts = [float(v) for v in value[:3]]
    else:
        parts = [float(value)]
    while len(parts) < 3:
        parts.append(0.0)
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    if not math.isfinite(degrees) or degrees < 0 or degrees > bound:
        return None
    return -degrees if ref_text == negative else degrees


def _exif_gps(exif: Image.Exif) -> tuple[float, float] | None:
    gps = exif.get_ifd(_TAG_GPS_IFD)
    if not gps or _GPS_LAT not in gps or _GPS_LON not in gps:
        return None
    lat = _gps_coordinate(gps[_GPS_LAT], gps.get(_GPS_LAT_REF), "N", "S", 90.0)
    lon = _gps_coordinate(gps[_GPS_LON], gps.get(_GPS_LON_REF), "E", "W", 180.0)
    if lat is None or lon is None:
        return None
    if lat == 0.0 and lon == 0.0:
        return None  # devices without a fix commonly write 0/0
    return (lat, lon)
