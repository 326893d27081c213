"""The chapters' helpers: the listings (listings.py) and what they do to the learner's copy
(learner_copy.py), how the copy's processes run apart from the reference (isolation.py), the
copy's server (learner_server.py), the `%%learner` magic and the one-line checks (learner.py),
the checks' clients (mine.py, client.py, bots.py), show() (show.py), and a chapter's first cell
(notebooks.py)."""
