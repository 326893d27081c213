"""The book's machinery, beside the project it builds (course_project/, which imports nothing of
this package). Three jobs, a folder each:

    setup/      setting up and serving: make's first step, MySQL and Redis, Debian packages,
                the reference's live server, Chromium, JupyterLab and its settings
    chapters/   the chapters' helpers: the listings and the learner's copy, its server, the
                one-line checks and their clients, the bots, show(), a chapter's first cell
    deploy/     the deployment demo (nginx, TLS, two app nodes, Redis Sentinel) and its drills

`python -m workbook <command>` is what the Makefile's targets run (__main__.py); paths.py names
the checkout's folders and errors.py the one error a step reports.
"""
