// The user function behind the custom route "echo": API Gateway passes the
// frame in event.body; the returned body goes back to the sender through the
// route's $default route response.
export const handler = async (event) => {
  let frame = {};
  try {
    frame = JSON.parse(event.body ?? "{}");
  } catch {
    return { statusCode: 400, body: JSON.stringify({ type: "error", error: "invalid JSON" }) };
  }
  return {
    statusCode: 200,
    body: JSON.stringify({
      type: "echo",
      connectionId: event.requestContext.connectionId,
      userId: event.requestContext.authorizer?.userId ?? null,
      data: frame.data ?? null,
    }),
  };
};
