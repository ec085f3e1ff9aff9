"""Browser tests of the web console: headless Chromium against a real server."""
