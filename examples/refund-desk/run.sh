#!/usr/bin/env bash
# A refund desk against a running `make up`, in one command:
#   examples/refund-desk/run.sh
# Signs up a demo user with an org of their own, stores the model server's
# URL, creates a JavaScript tool `refund` that waits for approval and an
# agent that first asks for the order with a form, then refunds it. It starts
# a thread and plays the person: fills the form (order A-1001, 1250 cents),
# approves the refund, and prints the agent's answer.
# Settings: SYNATRA (http://localhost:3000), LLM_URL (Ollama's
# http://localhost:11434/v1), MODEL (llama3.2). Needs curl and jq.
set -euo pipefail
SYNATRA=${SYNATRA:-http://localhost:3000}
LLM_URL=${LLM_URL:-http://localhost:11434/v1}
MODEL=${MODEL:-llama3.2}
ORIGIN=${ORIGIN:-http://localhost:3000}
JSON='content-type: application/json'
NAME="refund-desk-$(date +%s)-$RANDOM"
JAR=$(mktemp)
trap 'rm -f "$JAR"' EXIT

api() { # method path [json body]
    curl -sS --fail-with-body -X "$1" -H "authorization: Bearer $KEY" -H "$JSON" \
        ${3:+-d "$3"} "$SYNATRA/api/v1/orgs/$NAME$2"
}

echo "==> signing up $NAME@example.com with the org $NAME"
curl -sS --fail-with-body -c "$JAR" -H "$JSON" -o /dev/null \
    -d "{\"email\":\"$NAME@example.com\",\"password\":\"correct horse battery\",\"name\":\"Demo\"}" \
    "$SYNATRA/api/v1/auth/signup"
curl -sS --fail-with-body -b "$JAR" -H "Origin: $ORIGIN" -H "$JSON" -o /dev/null \
    -d "{\"name\":\"Refund desk\",\"slug\":\"$NAME\"}" "$SYNATRA/api/v1/orgs"
KEY=$(curl -sS --fail-with-body -b "$JAR" -H "Origin: $ORIGIN" -H "$JSON" \
    -d '{"name":"refund desk","role":"admin"}' "$SYNATRA/api/v1/orgs/$NAME/api-keys" | jq -r .token)

echo "==> model server $LLM_URL, tool refund (any member approves), agent refund-desk"
api PUT /environments/production/llm-providers/openai-compatible "{\"base_url\":\"$LLM_URL\"}" >/dev/null
api POST /tools "$(jq -n '{
    name: "refund", description: "Refunds part of an order, in cents",
    params: {type: "object", required: ["order", "cents"],
             properties: {order: {type: "string"}, cents: {type: "integer", minimum: 1}}},
    code: "console.log(`refunding ${params.cents} on ${params.order}`);\nreturn { refunded: params.cents, order: params.order };",
    approval: {policy: "any-member"}}')" >/dev/null
api POST /agents '{"slug":"refund-desk","name":"Refund desk"}' >/dev/null
api PUT /agents/refund-desk/working-copy "$(jq -n --arg model "$MODEL" '{config: {
    model: {provider: "openai-compatible", model: $model},
    system_prompt: "You handle refunds. First ask for the order id and the amount in cents with human_request: one field named details of kind form whose schema has the properties order (string) and cents (integer). Then call refund with them, and confirm in one sentence.",
    tools: ["refund"]}}')" >/dev/null
api POST /agents/refund-desk/releases '{"bump":"minor"}' >/dev/null

THREAD=$(api POST /threads '{"agent":"refund-desk","message":"I need a refund."}' | jq -r .thread.id)
echo "==> thread $THREAD"
for _ in $(seq 1 120); do
    T=$(api GET "/threads/$THREAD")
    case $(jq -r .status <<<"$T") in
    waiting_user)
        REQUEST=$(jq -r '[.messages[] | select(.kind == "human_request")] | last | .content.request_id' <<<"$T")
        echo "==> the agent asks: $(jq -r '[.messages[] | select(.kind == "human_request")] | last | .content.request.title' <<<"$T")"
        echo "    answering the form: order A-1001, 1250 cents"
        api POST "/threads/$THREAD/human-requests/$REQUEST/respond" \
            '{"status":"responded","data":{"details":{"order":"A-1001","cents":1250}}}' >/dev/null
        ;;
    waiting_approval)
        APPROVAL=$(api GET "/approvals?status=pending" | jq -r '.approvals[0].id')
        echo "==> approving $(api GET "/approvals/$APPROVAL" | jq -c '{tool: .tool.name, params}')"
        api POST "/approvals/$APPROVAL/approve" '{"comment":"ok"}' >/dev/null
        ;;
    completed)
        echo "==> the agent: $(jq -r '[.messages[] | select(.kind == "assistant")] | last | .content.text' <<<"$T")"
        exit 0
        ;;
    failed | cancelled | rejected)
        echo "==> the run ended $(jq -r .status <<<"$T"): $(jq -r '.runs[-1].error' <<<"$T")" >&2
        exit 1
        ;;
    esac
    sleep 1
done
echo "==> no answer after two minutes" >&2
exit 1
