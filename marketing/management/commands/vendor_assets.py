"""Put the third-party browser assets into static/vendor/ (gitignored, built at install time).

plotly.js comes from the plotly Python package, htmx from the npm registry (`npm pack`).
"""

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import plotly
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

HTMX_VERSION = "2.0.8"


class Command(BaseCommand):
    help = "Install htmx and plotly.js into static/vendor/."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Fetch again even if present")

    def handle(self, *args, **options):
        vendor = Path(settings.BASE_DIR) / "static" / "vendor"
        vendor.mkdir(parents=True, exist_ok=True)
        plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        shutil.copyfile(plotly_js, vendor / "plotly.min.js")
        htmx = vendor / "htmx.min.js"
        version_file = vendor / "htmx.version"
        current = version_file.read_text().strip() if version_file.exists() else ""
        if options["force"] or not htmx.exists() or current != HTMX_VERSION:
            self._fetch_htmx(htmx)
            version_file.write_text(HTMX_VERSION)
        self.stdout.write(f"static/vendor: plotly.js {plotly.__version__}, htmx {HTMX_VERSION}")

    def _fetch_htmx(self, target: Path) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise CommandError("npm is needed once to fetch htmx from the npm registry")
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(  # noqa: S603 - fixed arguments
                [npm, "pack", f"htmx.org@{HTMX_VERSION}", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if result.returncode != 0:
                raise CommandError(f"npm pack htmx.org failed: {result.stderr.strip()}")
            tarball = Path(tmp) / result.stdout.strip().splitlines()[-1]
            with tarfile.open(tarball) as tar:
                member = tar.extractfile("package/dist/htmx.min.js")
                if member is None:
                    raise CommandError("htmx tarball has no dist/htmx.min.js")
                target.write_bytes(member.read())
