"""Headless Chromium loads the bundled demo site from httpd: the page, its CSS and its image.

Checks three independent ways that everything loaded:
  * --dump-dom: the DOM Chromium built contains the page's heading;
  * the access log: /, /style.css and /kev-wave.png were each answered 200 to Chromium;
  * a screenshot: the header has the stylesheet's accent colour (unstyled it would be white),
    and the image's colours (decoded from kev-wave.png itself) cover about the area the
    <img> occupies (a broken image would leave the page background there).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import httpd_testlib as lib


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.browser = chromium()
        if cls.browser is None:
            raise AssertionError("chromium is not installed (tools/install_deps.sh installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="httpd_browser.", dir=lib.tmp_dir())
        cls.log = os.path.join(cls.tmp, "access.log")
        # No --root: the bundled demo site, found through the runfiles.
        cls.server = lib.Server("--access_log=" + cls.log)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, "httpd exited with %d: %s" % (code, cls.server.stderr())

    def run_chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="profile.", dir=self.tmp)
        env = dict(os.environ, HOME=self.tmp)
        cmd = [self.browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
               "--user-data-dir=" + profile, "--window-size=800,600"] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=120, check=False)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
        return p.stdout

    def logged(self, path):
        needle = ('"GET %s HTTP/1.1" 200 ' % path).encode()
        def found():
            with open(self.log, "rb") as f:
                return any(needle in line and b"Chrome" in line for line in f)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if found():
                return True
            time.sleep(0.2)
        return found()

    def test_page_css_and_image_load(self):
        dom = self.run_chromium("--dump-dom", self.server.url("/"))
        self.assertIn(b'<h1 id="title">kev httpd</h1>', dom)
        self.assertIn(b'src="/kev-wave.png"', dom)

        shot = os.path.join(self.tmp, "shot.png")
        self.run_chromium("--screenshot=" + shot, self.server.url("/"))
        for path in ("/", "/style.css", "/kev-wave.png"):
            self.assertTrue(self.logged(path), "%s not served to Chromium with 200" % path)

        with open(shot, "rb") as f:
            width, height, rows = lib.decode_png(f.read())
        self.assertGreater(width * height, 320 * 120)
        # CSS: header { background: #2f6fd6 } fills a wide band at the top.
        accent = sum(1 for y in range(0, min(height, 120), 4) for x in range(0, width, 4)
                     if all(abs(a - b) <= 6 for a, b in zip(rows[y][x], (0x2f, 0x6f, 0xd6))))
        self.assertGreater(accent, (width // 4) * 10, "the stylesheet did not apply")

        # Image: the PNG's own saturated colours (its gradient, not the white wave), coarsely
        # quantised, must cover a good part of the 320x120 area it is drawn in. Pixels of the
        # header's accent colour do not count, so the header cannot pass for the image.
        with open(os.path.join(self.server.root, "kev-wave.png"), "rb") as f:
            _, _, img = lib.decode_png(f.read())
        def bucket(px):
            return (px[0] >> 3, px[1] >> 3, px[2] >> 3)
        palette = {bucket(px) for row in img for px in row if max(px) - min(px) > 60}
        def is_accent(px):
            return all(abs(a - b) <= 10 for a, b in zip(px, (0x2f, 0x6f, 0xd6)))
        hits = sum(1 for y in range(0, height, 2) for x in range(0, width, 2)
                   if bucket(rows[y][x]) in palette and not is_accent(rows[y][x]))
        area_sampled = (320 * 120) // 4
        self.assertGreater(hits, area_sampled // 3, "the image did not render")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + [a for a in sys.argv[1:] if not a.startswith("--backend")],
                  verbosity=2)
