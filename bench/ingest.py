"""Images per second through the whole ingest path, against a plain Pillow decode of the same files.

    .venv/bin/python bench/ingest.py [--n 40] [--size 4000x3000] [--web-n 200] [--rounds 3]
        [--import-n 12] [--threads 1,2] [--kinds threads,processes] [--only camera|web] [--profile]
        [--camera-profile none|p3|adobe]
    DATABASE_URL=postgres://... .venv/bin/python bench/ingest.py    # the same on PostgreSQL

Two workloads, generated in memory, measured one after the other in the same run:
  camera  N camera-sized, photo-like JPEGs (--size, default 12 MP; smooth gradients and shapes
          with sensor grain, quality 90, a distinct seed each): decoding dominates. With
          --camera-profile p3 each embeds a Display P3 profile, as every iPhone photo does (adobe:
          the Adobe RGB-like one): then the colour transform of 3 MP (the draft scale) shows too.
  web     --web-n web-sized photos like a public photo set's (300-800 px on the longest side,
          landscape, portrait and square, quality 75-92). Half embed an RGB ICC profile, as
          camera and phone JPEGs do: in turn a Display P3 and an Adobe RGB (1998)-like profile
          (matrix/TRC profiles built here, byte for byte) and lcms's own sRGB; the other half
          have none. Decoding is cheap here, so what ingest adds per image (colour transform,
          queries, file writes, the commit) shows.
For each workload, per call, in one process and interleaved file by file (the order rotating):
  decode   Image.open(BytesIO(b)).load()           the baseline: every pixel decoded, one thread
  process  datasets.imaging.process(b)             validate, orient, hash, resize, encode, phash
  ingest   datasets.services.ingest_one(b, ...)    the above plus duplicate checks, storage, row
and then what a planner waits for, the import of a folder holding the same files (all --web-n
web photos; the first --import-n camera files): services.create_import(folder=..., trusted=True)
and services.run_import, report lines and counters included, with INGEST_WORKER_THREADS = 1
(everything on one thread, as before worker threads existed) and = its default (min(4, CPU
cores), at least 2), or the counts given with --threads; with more than one, once per
INGEST_WORKER_KIND in --kinds (worker threads, worker processes). Each import is timed right
after a plain decode of the same files on one thread (the faster of two passes), its own
baseline; the ratio printed is the median over rounds of those pairs. With more than one worker
the import uses more than one core: the figure is per machine, not per core (the "CPU time /
wall time" printed says how many cores it kept busy on average; a shared machine may not lend
it all of them). So each import also prints its CPU time per image (user + system, this process
and its worker processes, from getrusage) and decode's CPU time per image over it, the "CPU"
ratio: what a loaded machine changes least (a database server's own CPU is not in it).
The ingest steps write into a throwaway database (bench/_common.py: a SQLite file in a temp dir,
or with DATABASE_URL a PostgreSQL database `bench_ingest`, dropped afterwards) and a temp media
folder, emptied between rounds so every round stores every file. Prints images/s (median of the
rounds) and the ratios against decode; --profile then runs ingest over the web set once more
under cProfile and prints where the time went. The issue's aims: ingest / decode >= 0.6 on
camera files, >= 0.3 on web photos.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import setup_django
from PIL import Image, ImageCms, ImageDraw, ImageFilter

PG_NAME = "bench_ingest"


def camera_jpeg(width: int, height: int, seed: int, quality: int = 90, icc: bytes | None = None) -> bytes:
    """A photo-like JPEG: a scene drawn at 1/4 size, upscaled (soft, like optics), plus grain."""
    rng = np.random.default_rng(seed)
    w, h = max(16, width // 4), max(16, height // 4)
    top, bottom = rng.integers(60, 230, 3), rng.integers(20, 200, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    sky = np.repeat(top * (1 - t) + bottom * t, w, axis=1)
    small = Image.fromarray(sky.astype("uint8"))
    draw = ImageDraw.Draw(small)
    horizon = int(h * rng.uniform(0.4, 0.75))
    draw.rectangle([0, horizon, w, h], fill=tuple(int(v) for v in rng.integers(30, 160, 3)))
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = int(rng.integers(-w // 8, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(w // 20, w // 3)), int(rng.integers(h // 20, h // 3))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + rw, y0 + rh], fill=colour)
    small = small.filter(ImageFilter.GaussianBlur(1.5))
    big = np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.int16)
    big += rng.integers(-5, 6, (height, width, 1), dtype=np.int16)  # luminance grain
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    Image.fromarray(big.clip(0, 255).astype("uint8")).save(buf, "JPEG", quality=quality, **extra)
    return buf.getvalue()


# ---------------------------------------------------------------- ICC profiles

D50 = np.array([0.9642, 1.0, 0.8249])
D65 = (0.3127, 0.3290)
SRGB_TRC = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)  # IEC 61966-2-1, as Display P3 uses


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(v) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)


def rgb_profile(name: str, primaries, white, trc) -> bytes:
    """An ICC v2 matrix/TRC display profile, the kind cameras and phones embed. Pillow's ImageCms
    can only create sRGB, LAB and XYZ profiles, so the bytes are written here: colorants from
    the primaries' chromaticities, Bradford-adapted to the D50 connection space; `trc` is a gamma
    or the five parameters of an sRGB-style curve."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    m = np.column_stack([xyz(*p) for p in primaries])
    w = xyz(*white)
    m = m * np.linalg.solve(m, w)
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    m = np.linalg.inv(bradford) @ np.diag((bradford @ D50) / (bradford @ w)) @ bradford @ m
    if isinstance(trc, float):
        curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(trc * 256))
    else:
        curve = b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(_s15(v) for v in trc)
    text = name.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 11 + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", _xyz_tag(D50)), (b"rXYZ", _xyz_tag(m[:, 0])), (b"gXYZ", _xyz_tag(m[:, 1])),
            (b"bXYZ", _xyz_tag(m[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0No copyright, use freely\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = (struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28
              + b"".join(_s15(c) for c in D50) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + body


def embedded_profiles() -> list[bytes]:
    return [
        rgb_profile("Display P3 (bench)", [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], D65, SRGB_TRC),
        rgb_profile("Adobe RGB (1998)-like (bench)", [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)], D65, 563 / 256),
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    ]


def web_photos(n: int, seed: int = 7) -> list[bytes]:
    """Photos of 300-800 px on the longest side, landscape, portrait or square; every other one
    with an embedded profile (P3, Adobe RGB-like, sRGB in turn)."""
    rng = np.random.default_rng(seed)
    profiles = embedded_profiles()
    files = []
    for i in range(n):
        side = int(rng.integers(300, 801))
        aspect = [4 / 3, 3 / 2, 1.0, 16 / 9][int(rng.integers(0, 4))]
        short = max(64, round(side / aspect))
        w, h = (side, short) if rng.random() < 0.7 else (short, side)
        icc = profiles[(i // 2) % len(profiles)] if i % 2 == 0 else None
        files.append(camera_jpeg(w, h, seed=5000 + i, quality=int(rng.integers(75, 93)), icc=icc))
    return files


# ---------------------------------------------------------------- measuring


def measure(steps: dict, files: list[bytes], rounds: int, reset) -> dict[str, list[float]]:
    """Seconds per round for each step over all files, steps interleaved file by file."""
    totals: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        spent = dict.fromkeys(steps, 0.0)
        for i, b in enumerate(files):
            # Rotate the order per file so no step always runs on a cold or warm cache.
            names = list(steps)[i % 3:] + list(steps)[: i % 3]
            for name in names:
                start = time.perf_counter()
                steps[name](b)
                spent[name] += time.perf_counter() - start
        for name in steps:
            totals[name].append(spent[name])
        reset()  # next round stores every file again
    return totals


def machine_busy() -> float | None:
    """CPU seconds every process on the machine has spent so far (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended: an import's
    worker processes count once run_import has shut them down."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def label(config: tuple[int, str]) -> str:
    threads, kind = config
    if threads == 1:
        return "1 thread"
    return f"{threads} worker {'threads' if kind == 'threads' else 'processes'}"


def measure_import(files: list[bytes], rounds: int, decode, import_folder, reset,
                   configs: list[tuple[int, str]]) -> dict[str, list[float]]:
    """Seconds per round: the whole import of the folder holding `files` (`import_folder(threads,
    kind)`) in each configuration (worker count, threads or processes), each right after a plain
    decode of the same files one after the other (its own baseline, the faster of two passes: on
    a noisy machine the pair shares the weather), the order rotating. Also the CPU time of each
    (this process and its worker processes) and of the decode passes."""
    totals: dict[str, list[float]] = {}
    for r in range(rounds):
        order = configs[r % len(configs):] + configs[: r % len(configs)]
        for config in order:
            key = label(config)
            passes, decode_cpu = [], []
            for _ in range(2):  # the faster of two passes: a short baseline is easily disturbed
                start, cpu0 = time.perf_counter(), time.thread_time()
                for b in files:
                    decode(b)
                passes.append(time.perf_counter() - start)
                decode_cpu.append(time.thread_time() - cpu0)
            busy, main_cpu, cpu = machine_busy(), time.thread_time(), cpu_seconds()
            middle = time.perf_counter()
            import_folder(*config)
            wall = time.perf_counter() - middle
            ours = cpu_seconds() - cpu
            totals.setdefault(f"main {key}", []).append(time.thread_time() - main_cpu)
            if busy is not None:  # what other processes kept busy meanwhile (a shared machine)
                totals.setdefault(f"others {key}", []).append(max(0.0, machine_busy() - busy - ours) / wall)
            totals.setdefault(f"decode {key}", []).append(min(passes))
            totals.setdefault(f"decode cpu {key}", []).append(min(decode_cpu))
            totals.setdefault(f"import {key}", []).append(wall)
            totals.setdefault(f"cpu {key}", []).append(ours)
            totals.setdefault(f"cores {key}", []).append(ours / wall)
            reset()  # the next import stores every file again
    return totals


def report_import(title: str, n: int, totals: dict[str, list[float]], rounds: int, aim: float,
                  configs: list[tuple[int, str]]) -> dict[str, tuple[float, float]]:
    """Prints images/s and, per configuration, the median over rounds of import / decode measured
    side by side, and the CPU time per image; returns {label: (wall ratio, CPU ratio)}."""
    print(f"\n{title}: images/s (median of {rounds} rounds; this machine has {os.cpu_count()} CPU cores)")
    decodes = [t for name, ts in totals.items() if name.startswith("decode ") and "cpu" not in name for t in ts]
    decode_cpu = statistics.median(t for name, ts in totals.items() if name.startswith("decode cpu") for t in ts) / n
    print(f"  {'plain Pillow decode, one thread':<40} {n / statistics.median(decodes):8.1f}   "
          f"(CPU {decode_cpu * 1e3:.2f} ms/image)")
    ratios = {}
    for config in configs:
        key = label(config)
        imports, pairs = totals[f"import {key}"], zip(totals[f"decode {key}"], totals[f"import {key}"])
        wall_ratio = statistics.median(d / i for d, i in pairs)
        cpu = statistics.median(totals[f"cpu {key}"]) / n
        ratios[key] = (wall_ratio, decode_cpu / cpu)
        spread = ", ".join(f"{n / t:.1f}" for t in imports)
        cores = statistics.median(totals[f"cores {key}"])
        others = totals.get(f"others {key}")
        busy = f"; other processes {statistics.median(others):.2f} cores" if others else ""
        print(f"  {'run_import, ' + key:<40} {n / statistics.median(imports):8.1f}   "
              f"(rounds: {spread}; CPU {cpu * 1e3:.2f} ms/image, this process and its workers; "
              f"CPU time / wall time {cores:.2f}{busy})")
    for key, (wall_ratio, cpu_ratio) in ratios.items():
        print(f"  ratio run_import ({key}) / decode: {wall_ratio:.2f}   (aim: >= {aim}; "
              f"decode CPU / import CPU per image: {cpu_ratio:.2f})")
    for config in configs:
        if config[0] > 1:
            # What workers cannot take over: the calling thread's own CPU time (listing, the
            # queries, rows and report lines). With cores enough for the rest, it goes no faster.
            key = label(config)
            main = statistics.median(totals[f"main {key}"]) / n
            decode = statistics.median(totals[f"decode {key}"]) / n
            print(f"  calling thread's own CPU time with {key}: {main * 1e3:.2f} ms/image, so "
                  f"at most {1 / main:.0f} images/s ({decode / main:.2f} of decode) however many cores")
    return ratios


def report(title: str, n: int, totals: dict[str, list[float]], rounds: int, aim: float) -> dict[str, float]:
    rate = {name: n / statistics.median(t) for name, t in totals.items()}
    print(f"\n{title}: images/s (median of {rounds} rounds)")
    for name, label in (("decode", "plain Pillow decode"), ("process", "imaging.process"),
                        ("ingest", "whole ingest_one path")):
        spread = ", ".join(f"{n / t:.1f}" for t in totals[name])
        print(f"  {label:<24} {rate[name]:8.1f}   (rounds: {spread})")
    print(f"  ratio process / decode: {rate['process'] / rate['decode']:.2f}")
    print(f"  ratio ingest  / decode: {rate['ingest'] / rate['decode']:.2f}   (aim: >= {aim})")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="number of camera JPEGs (default 40)")
    parser.add_argument("--size", default="4000x3000", help="camera WIDTHxHEIGHT (default 4000x3000, 12 MP)")
    parser.add_argument("--web-n", type=int, default=200, help="number of web-sized photos (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of each whole set (default 3)")
    parser.add_argument("--only", choices=("camera", "web"), help="measure one workload only")
    parser.add_argument("--camera-profile", choices=("none", "p3", "adobe"), default="none",
                        help="embed this ICC profile in every camera JPEG (default none)")
    parser.add_argument("--profile", action="store_true", help="then profile ingest over the web set (cProfile)")
    parser.add_argument("--pg-name", default=PG_NAME, help=f"throwaway PostgreSQL database (default {PG_NAME})")
    parser.add_argument("--import-n", type=int, default=12,
                        help="camera JPEGs in the folder run_import reads (default 12; the web one holds all --web-n)")
    parser.add_argument("--threads", default="",
                        help="comma-separated INGEST_WORKER_THREADS for run_import (default: 1 and the default)")
    parser.add_argument("--kinds", default="threads,processes",
                        help="comma-separated INGEST_WORKER_KIND for run_import with more than one worker "
                             "(default: threads,processes)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    connection = old_name = None
    try:
        connection, old_name = setup_django(tmp, args.pg_name)
        from django.conf import settings

        from datasets import imaging, services
        from datasets.models import Image as ImageRow
        from datasets.models import ImportJob, Licence, Source, Subcategory

        source = Source.objects.create(kind="upload", name="bench", default_licence=Licence.objects.get(code="cc-by-4.0"))
        sub = Subcategory.objects.select_related("category").get(category__slug="food", slug="korean")
        limits = imaging.Limits.from_settings()
        print(f"database: {connection.vendor}; longest side stored {limits.longest_side}px")

        def decode(b: bytes) -> None:
            with Image.open(io.BytesIO(b)) as im:
                im.load()

        def process(b: bytes) -> None:
            imaging.process(b, limits)

        def ingest(b: bytes) -> None:
            result = services.ingest_one(b, source=source, category=sub.category, subcategory=sub, limits=limits)
            assert result.outcome == "accepted", result.reason

        def reset() -> None:
            ImageRow.objects.all().delete()
            ImportJob.objects.all().delete()
            shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)

        default_threads = settings.INGEST.get("WORKER_THREADS", 1)
        default_kind = settings.INGEST.get("WORKER_KIND", "threads")
        thread_counts = ([int(t) for t in args.threads.split(",")] if args.threads
                         else sorted({1, max(2, default_threads)}))
        kinds = [k for k in args.kinds.split(",") if k]
        configs = [(t, k) for t in thread_counts for k in (kinds if t > 1 else ["threads"])]

        def folder_of(name: str, files: list[bytes]) -> Path:
            folder = tmp / name
            folder.mkdir()
            for i, b in enumerate(files):
                (folder / f"{i:05d}.jpg").write_bytes(b)
            return folder

        def import_folder(folder: Path, n: int):
            def run(threads: int, kind: str) -> None:
                settings.INGEST["WORKER_THREADS"], settings.INGEST["WORKER_KIND"] = threads, kind
                try:
                    job = services.create_import(source=source, folder=str(folder), category=sub.category,
                                                 subcategory=sub, trusted=True, enqueue=False)
                    job = services.run_import(job.pk)
                finally:
                    settings.INGEST["WORKER_THREADS"], settings.INGEST["WORKER_KIND"] = default_threads, default_kind
                assert (job.status, job.accepted) == ("done", n), (job.status, job.accepted, job.error)
            return run

        steps = {"decode": decode, "process": process, "ingest": ingest}
        rates, imports = {}, {}
        if args.only in (None, "camera"):
            t0 = time.perf_counter()
            icc = dict(zip(("p3", "adobe"), embedded_profiles())).get(args.camera_profile)
            files = [camera_jpeg(width, height, seed=1000 + i, icc=icc) for i in range(args.n)]
            mb = sum(map(len, files)) / args.n / 1e6
            print(f"\ncamera: {args.n} JPEGs of {width}x{height} (quality 90, {mb:.1f} MB each on average, "
                  f"ICC profile: {args.camera_profile}), generated in {time.perf_counter() - t0:.1f} s")
            totals = measure(steps, files, args.rounds, reset)
            rates["camera"] = report(f"camera {width}x{height}", args.n, totals, args.rounds, 0.6)
            n = min(args.import_n, args.n)
            totals = measure_import(files[:n], args.rounds, decode, import_folder(folder_of("camera", files[:n]), n),
                                    reset, configs)
            imports["camera"] = report_import(f"camera {width}x{height}, the import of a folder of {n}", n, totals,
                                              args.rounds, 0.6, configs)
        web = None
        if args.only in (None, "web") or args.profile:
            web = web_photos(args.web_n)
            kb = sum(map(len, web)) / len(web) / 1e3
            print(f"\nweb: {args.web_n} JPEGs of 300-800 px on the longest side (quality 75-92, {kb:.0f} kB each "
                  f"on average), {(args.web_n + 1) // 2} with an ICC profile (P3, Adobe RGB-like, sRGB)")
        if args.only in (None, "web"):
            totals = measure(steps, web, args.rounds, reset)
            rates["web"] = report("web 300-800 px", args.web_n, totals, args.rounds, 0.3)
            totals = measure_import(web, args.rounds, decode, import_folder(folder_of("web", web), len(web)),
                                    reset, configs)
            imports["web"] = report_import(f"web 300-800 px, the import of a folder of {len(web)}", len(web), totals,
                                           args.rounds, 0.3, configs)
        print("\nsummary, against a plain decode on one thread in the same run "
              f"({os.cpu_count()} CPU cores, WORKER_THREADS default {default_threads}, WORKER_KIND default "
              f"{default_kind}; aims: camera >= 0.6, web >= 0.3). \"wall\": images/s over decode's; \"CPU\": "
              "decode's CPU time per image over the import's (this process and its worker processes), "
              "what a loaded machine changes least:")
        for name, r in rates.items():
            print(f"  {name:<7} ingest_one / decode {r['ingest'] / r['decode']:.2f}")
            for key, (wall_ratio, cpu_ratio) in imports[name].items():
                print(f"  {name:<7} run_import, {key:<22} wall {wall_ratio:.2f}   CPU {cpu_ratio:.2f}")
        if args.profile:
            for b in web[:10]:  # warm: first-use costs are not what is profiled
                ingest(b)
            reset()
            profiler = cProfile.Profile()
            profiler.enable()
            for b in web:
                ingest(b)
            profiler.disable()
            reset()
            print(f"\ncProfile of ingest_one over the {len(web)} web photos (cumulative, top 30):")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            print("... and by time spent in the function itself (top 20):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    finally:
        if connection is not None:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
