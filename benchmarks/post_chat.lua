-- wrk: POST one chat message as JSON (usage: wrk -s post_chat.lua URL/api/chat)
wrk.method = "POST"
wrk.body = '{"message": "How do I call the API from my own code?"}'
wrk.headers["Content-Type"] = "application/json"
