"""Builds cosfast's compiled core. Switches come from the environment, never from argv:

COSFAST_DEBUG=1     -O0 -g3, asserts on, Cython line tracing off
COSFAST_SANITIZE=1  AddressSanitizer + UBSan (run tests with LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                    and PYTHONMALLOC=malloc, so small buffers are separate, checked allocations)
COSFAST_WERROR=1    -Werror (CI only; never shipped to users who build from source)
"""
from __future__ import annotations

import os

from Cython.Build import cythonize
from setuptools import Extension, setup


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def compile_flags() -> tuple[list[str], list[str], list[tuple[str, str | None]]]:
    cflags = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-function"]
    ldflags: list[str] = []
    macros: list[tuple[str, str | None]] = []
    if env_flag("COSFAST_DEBUG") or env_flag("COSFAST_SANITIZE"):
        cflags += ["-O0", "-g3", "-UNDEBUG"]
    else:
        cflags += ["-O3"]
        macros.append(("NDEBUG", "1"))
    if env_flag("COSFAST_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        cflags += san
        ldflags += san
    if env_flag("COSFAST_WERROR"):
        cflags.append("-Werror")
    return cflags, ldflags, macros


CRC64_SOURCES = [
    "src_c/crc64_table.c",
    "src_c/crc64_combine.c",
    "src_c/crc64_dispatch.c",
    "src_c/crc64_cpu.c",
    "src_c/crc64_clmul.c",
    "src_c/crc64_vpclmul.c",
    "src_c/crc64_avx512.c",
]


def extensions() -> list[Extension]:
    cflags, ldflags, macros = compile_flags()
    common = dict(
        include_dirs=["src_c"],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        define_macros=macros,
    )
    return [
        Extension("cosfast._crc64", ["cosfast/_crc64.pyx", *CRC64_SOURCES], **common),
        # The part writer runs the CRC in C in the same pass as pwrite, so it links the kernels;
        # libdl finds pycurl's libcurl for the C write callback (src_c/curlwrite.h).
        Extension(
            "cosfast._partwriter",
            ["cosfast/_partwriter.pyx", "src_c/partwriter.c", "src_c/directwrite.c", "src_c/curlwrite.c",
             *CRC64_SOURCES],
            libraries=["dl"],
            **common,
        ),
    ]


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives={"language_level": 3, "embedsignature": True},
        quiet=True,
    ),
)
