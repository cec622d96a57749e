"""Packaging glue that pyproject.toml cannot express: config.py reads the built-in `config.yml` from its
own directory, and config.py is a top-level module, so config.yml must land beside it in site-packages
(package data can only live inside a package). Everything else is in pyproject.toml."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfig(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file("config.yml", str(Path(self.build_lib) / "config.yml"))


setup(cmdclass={"build_py": BuildWithConfig})
