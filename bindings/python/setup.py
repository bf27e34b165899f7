# Installs the `dsc` package: `pip install bindings/python`.
#
# Deliberately setup.py without a pyproject.toml: pip then builds with the
# setuptools already installed instead of fetching one into an isolated
# build environment, so installing needs no network. (With a pip that
# insists on isolation anyway: `pip install --no-build-isolation ...`.)
# The package is pure Python; libdsc itself is found at run time (see
# dsc/__init__.py), or may be copied next to the package as libdsc.so.0.
import os
import re

from setuptools import setup


def libdsc_version():
    """The version is written once, in include/dsc.h."""
    here = os.path.dirname(os.path.abspath(__file__))
    header = os.path.join(here, "..", "..", "include", "dsc.h")
    try:
        with open(header) as f:
            m = re.search(r'^#define DSC_VERSION_STRING "([^"]+)"', f.read(), re.M)
    except OSError as e:
        raise SystemExit("setup.py: cannot read %s (%s): install the package "
                         "from a libdsc checkout, where its version is written"
                         % (os.path.normpath(header), e.strerror))
    if not m:
        raise SystemExit("setup.py: no DSC_VERSION_STRING in include/dsc.h")
    return m.group(1)


setup(
    name="dsc",
    version=libdsc_version(),
    description="Cached reading of ML datasets from S3, over libdsc",
    packages=["dsc"],
    package_data={"dsc": ["libdsc.so.0"]},
    python_requires=">=3.8",
    # fsspec finds the "dsc" protocol here without `import dsc` first.
    entry_points={"fsspec.specs": ["dsc = dsc.fs:DscFileSystem"]},
)
