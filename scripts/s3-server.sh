# Sourced by scripts/s3-test and scripts/pg-test: a real S3 server (s3s-fs from crates.io,
# which keeps each object as a file) on a loopback port, installed when missing, with the
# environment the server and the test harnesses read (AWS_*, XUNCHA_TEST_PHOTOS,
# XUNCHA_TEST_S3_ROOT). Needs $work (a temporary folder) and the pids array; the caller's
# cleanup kills the pids.
s3s_version=0.14.1
if ! cargo install --list | grep -q "^s3s-fs v$s3s_version:"; then
  echo "== installing s3s-fs $s3s_version (crates.io; a real S3 server on the file system)"
  cargo install --locked s3s-fs --version "=$s3s_version" --features binary
fi
s3s="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
root="$work/s3"
bucket=xuncha-test
mkdir -p "$root/$bucket"
s3_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=off "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key xuncha-test-key --secret-key xuncha-test-secret "$root" &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=xuncha-test-key AWS_SECRET_ACCESS_KEY=xuncha-test-secret
export XUNCHA_TEST_PHOTOS="s3://$bucket" XUNCHA_TEST_S3_ROOT="$root"
