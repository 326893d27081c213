"""Setting up and serving: make's first step (bootstrap.py), MySQL and Redis found or started
(services.py, localservers.py), Debian packages (debian.py), the reference's live server
(liveserver.py), Chromium for the browser tests (browser.py), JupyterLab and its settings (lab.py,
jupyter/)."""
