# Thin targets: each one runs Python. bootstrap.py makes .venv (or uses the active conda env).
PYTHON ?= python3
RUN = $(PYTHON) workbook/setup/bootstrap.py

.PHONY: lab serve stop services reset notebooks test bench lint deploy-demo deploy-stop

lab:        ## everything, then JupyterLab on notebooks/
	@$(RUN) lab
serve:      ## MySQL, Redis, databases and the live server in the background
	@$(RUN) serve
stop:       ## stop the live server
	@$(RUN) stop
services:   ## MySQL, Redis, databases, user, schema and seed data only
	@$(RUN) services
reset:      ## drop and recreate both course databases, then seed again
	@$(RUN) reset
notebooks:  ## re-execute every notebook in place from a fresh kernel and save outputs
	@$(RUN) notebooks
test:       ## the same setup, then the whole pytest suite with strict nbval
	@$(RUN) test
bench:      ## the benchmarks: tables on stdout, JSON in tests/benchmarks/results/
	@$(RUN) bench
lint:       ## ruff on course_project/, workbook/ and tests/ (make test runs it too)
	@$(RUN) lint
deploy-demo: ## as root: nginx + TLS + two app nodes in network namespaces, in the background
	@$(RUN) deploy up
deploy-stop: ## stop the deployment demo and remove everything it made
	@$(RUN) deploy down
