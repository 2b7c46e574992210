PY ?= python3

.PHONY: build test bench bench-side asan soak lint clean
build:
	$(PY) -m pip install -e '.[test]'

test:
	$(PY) -m pytest -q

bench:
	$(PY) -m pytest bench -q --benchmark-only

# side-by-side downloads against the official SDK and other clients (bench/README.md)
bench-side:
	$(PY) -m bench --suite big
	$(PY) -m bench --suite small --rounds 3

# the compiled core's tests under AddressSanitizer + UBSan (docs/RELIABILITY.md)
asan:
	PY=$(PY) tools/asan_tests.sh

# the fault soak and the crash-restart loop, full size (docs/RELIABILITY.md)
soak:
	$(PY) -m bench.soak
	$(PY) -m bench.crash_loop

lint:
	$(PY) -m ruff check cosfast tests bench

clean:
	rm -rf build *.egg-info cosfast/*.so cosfast/_crc64.c cosfast/_partwriter.c
