"""Package layout: the `ceal` namespace is spread over the design card's top-level folders.

clients/ceal/{client,cli,pacs}, service/ceal/service, trainer/ceal/trainer and the generated
proto/gen/ceal/v1 install as one distribution; everything else lives in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

ROOTS = ["clients", "service", "trainer", "proto/gen"]

packages: list[str] = []
package_dir: dict[str, str] = {}
for root in ROOTS:
    for pkg in find_namespace_packages(root, include=["ceal.*"]):
        if "__pycache__" in pkg:
            continue
        packages.append(pkg)
        package_dir[pkg] = f"{root}/{pkg.replace('.', '/')}"

# The console's pages (HTML, CSS, JS modules) ship inside the package: no CDN, no build step.
# py.typed: the SDK is typed strictly, and says so to its users' type checkers (PEP 561).
PACKAGE_DATA = {
    "ceal.v1": ["*.pyi"],
    "ceal.oip": ["*.pyi"],
    "ceal.client": ["py.typed"],
    "ceal.console": ["static/*.*", "static/js/*.js"],
}

setup(packages=packages, package_dir=package_dir, package_data=PACKAGE_DATA)
