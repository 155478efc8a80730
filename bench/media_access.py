"""What checking who may see a photo costs, against public media in the same run.

    .venv/bin/python bench/media_access.py [--photos 60] [--repeat 5]

Local media (no S3) is answered by datasets.media.serve_media, which checks the viewer before
sending the file; before issue 9 Django's static `serve` sent any file to anyone. Both are
mounted here (the old one at /public-media/) and timed, median of --repeat after a warm-up, with
Django's test client (view and template, no HTTP server) as a browser would load:

  grid      a planner's image grid page (/datasets/images/) and every thumbnail on it
  labeling  a labeler's `next` (two photos: the shown one and the one fetched ahead) and both
            photos, the guideline page and its example thumbnails

each once with public URLs (the baseline) and once through the check, and prints the ratio.
Runs on a throwaway SQLite file, or with DATABASE_URL=postgres://... on PostgreSQL
(`bench_media_access`, dropped afterwards).
"""
from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from _common import median_time, setup_django

DB_NAME = "bench_media_access"
urlpatterns: list = []  # filled in main(): this module is the ROOT_URLCONF while it runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    connection, old_name = setup_django(tmp, DB_NAME)
    try:
        run(args, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, connection) -> None:
    from django.conf import settings
    from django.test import Client
    from django.urls import clear_url_caches, path
    from django.views.static import serve

    import config.urls
    from accounts import services as accounts
    from datasets import services as datasets
    from datasets.models import Licence, Source
    from labeling import services
    from tests.conftest import make_photo

    urlpatterns[:] = [path("public-media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
                      *config.urls.urlpatterns]
    settings.ROOT_URLCONF = __name__
    clear_url_caches()
    settings.INGEST = {**settings.INGEST, "THUMB_LONGEST_SIDE": 160}
    # Persistent connections as in production: with the embedded default's 0, every request that
    # touches the database (every checked one, no public one) would open a new connection.
    connection.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)

    licence = Licence.objects.get(code="cc-by-4.0")
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    for i in range(args.photos):
        datasets.ingest_one(make_photo(320, 240, seed=i), source=source)
    planner = accounts.create_user("planner", "bench-pass-123", "planner")
    labeler = accounts.create_user("labeler", "bench-pass-123", "labeler")
    others = [services.create_project(f"other {i}") for i in range(3)]  # more memberships to look through
    project = services.create_project("bench", sources=[source])
    for p in (*others, project):
        services.sync_project_images(p)
        services.add_member(p, labeler)
    from datasets.models import Image

    for image in Image.objects.all()[:10]:
        services.save_example(project, image, comments=[{"comment_type": "reaction", "text": "와 예쁘다", "verdict": "good"}])
    services.publish_guideline(project, "Write what you see.")

    def fetch_all(client, html_or_urls, public: bool):
        urls = html_or_urls if isinstance(html_or_urls, list) else re.findall(r'src="(/media/[^"]+)"', html_or_urls)
        assert urls, "no photo on the page"
        for u in urls:
            u = u.replace("http://testserver", "")
            if public:
                u = u.replace("/media/", "/public-media/", 1)
            response = client.get(u)
            assert response.status_code == 200, (u, response.status_code)
            b"".join(response.streaming_content)

    staff, crowd = Client(), Client()
    staff.force_login(planner)
    crowd.force_login(labeler)

    def grid(public: bool):
        fetch_all(staff, staff.get("/datasets/images/").content.decode(), public)

    def labeling(public: bool):
        body = crowd.post(f"/api/projects/{project.pk}/next/", {"count": 2}, content_type="application/json").json()
        photos = [a["image"][k] for a in body["assignments"] for k in ("url", "thumbnail_url")]
        fetch_all(crowd, photos, public)
        fetch_all(crowd, crowd.get(f"/label/{project.pk}/guide/").content.decode(), public)

    print(f"{connection.vendor}, {args.photos} photos, median of {args.repeat}")
    for name, fn in (("grid", grid), ("labeling", labeling)):
        base = median_time(lambda fn=fn: fn(True), args.repeat)
        checked = median_time(lambda fn=fn: fn(False), args.repeat)
        print(f"  {name:9s} public {base * 1000:7.1f} ms   checked {checked * 1000:7.1f} ms   ratio {checked / base:5.2f}")


if __name__ == "__main__":
    main()
