PY ?= python3

.PHONY: build test bench lint clean
build:
	$(PY) -m pip install -e '.[test]'

test:
	$(PY) -m pytest -q

bench:
	$(PY) -m pytest bench -q --benchmark-only

lint:
	$(PY) -m ruff check cosfast tests bench

clean:
	rm -rf build *.egg-info cosfast/*.so cosfast/_crc64.c cosfast/_partwriter.c
