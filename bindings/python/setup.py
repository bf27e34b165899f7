# Installs the `dsc` package: `pip install bindings/python`.
#
# Deliberately setup.py without a pyproject.toml: pip then builds with the
# setuptools already installed instead of fetching one into an isolated
# build environment, so installing needs no network. (With a pip that
# insists on isolation anyway: `pip install --no-build-isolation ...`.)
# The package is pure Python; libdsc itself is found at run time (see
# dsc/__init__.py), or may be copied next to the package as libdsc.so.0.
from setuptools import setup

setup(
    name="dsc",
    version="0.1.0",
    description="Cached reading of ML datasets from S3, over libdsc",
    packages=["dsc"],
    package_data={"dsc": ["libdsc.so.0"]},
    python_requires=">=3.8",
)
