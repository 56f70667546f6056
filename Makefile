# The two newcomer commands: `make demo` and `make test`. Each creates .venv
# on first use, installs tworail into it and runs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Pinned first so that no dependency pulls a CUDA build of torch.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/tworail demo

test: install
	TRITON_INTERPRET=1 $(BIN)/pytest -q

clean:
	rm -rf $(VENV)
