# Issue #25's query of death on the CUDA backend, served end to end: fastgen serve --backend cuda on the
# demo model, completions and streamed chat with repetition_penalty 1.4e-45 / 1e-38 / 1e-37 and
# temperature > 0; every answer must be 200 / end with [DONE], and the server must stay healthy.
# Run on the device: bash .gpu/enter bash bench/device/query-of-death.sh
set -u
bun src/cli.ts serve --backend cuda --port 8123 --grpc-port 0 > /tmp/serve.log 2>&1 &
for i in $(seq 1 60); do curl -sf http://127.0.0.1:8123/health >/dev/null && break; sleep 1; done
echo "ready after ${i}s"
for rp in 1.4e-45 1e-38 1e-37; do
  curl -s -o /dev/null -w "completions rp=$rp -> %{http_code}\n" http://127.0.0.1:8123/v1/completions -H 'content-type: application/json' -d "{\"prompt\":\"The module loads the module\",\"max_tokens\":16,\"temperature\":1,\"repetition_penalty\":$rp}"
  curl -s http://127.0.0.1:8123/v1/chat/completions -H 'content-type: application/json' -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Say the module twice\"}],\"max_tokens\":16,\"temperature\":1.5,\"top_p\":0.9,\"repetition_penalty\":$rp,\"stream\":true}" | grep -c "data: \[DONE\]" | sed "s/^/streamed chat rp=$rp: [DONE] lines: /"
done
curl -s -o /dev/null -w "health -> %{http_code}\n" http://127.0.0.1:8123/health
curl -s http://127.0.0.1:8123/v1/completions -H 'content-type: application/json' -d '{"prompt":"The module","max_tokens":8,"temperature":0}' | head -c 300; echo
grep -i "crash\|backend\|serving\|cuda" /tmp/serve.log | head -5
nvidia-smi --query-gpu=name --format=csv,noheader
kill %1; wait
