#!/usr/bin/env bash
# Builds tests/sdk/java (Segment's analytics-java from Maven Central, pinned in its pom.xml) and
# copies its jars into target/dependency, so that tests/sdk/test_java_sdk.py runs it with `java`.
# Idempotent: skipped when the pom and the source are unchanged since the last build.
set -euo pipefail
cd "$(dirname "$0")/../tests/sdk/java"
command -v mvn >/dev/null || { echo "install-java-sdk: mvn is not installed (need Maven and Java >= 17)" >&2; exit 1; }
stamp=target/.journey-build.sha256
want=$(cat pom.xml src/main/java/journey/sdk/*.java | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "install-java-sdk: up to date"
    exit 0
fi
mvn -q -B compile dependency:copy-dependencies -DincludeScope=runtime
echo "$want" > "$stamp"
