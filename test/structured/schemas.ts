/** Real-world schemas written out: what a client of the JSON routes would send. */

export const ORDER_TICKET = {
  title: "Order ticket",
  type: "object",
  properties: {
    symbol: { type: "string", minLength: 1, maxLength: 8 },
    side: { enum: ["buy", "sell"] },
    order_type: { enum: ["market", "limit", "stop"] },
    quantity: { type: "integer", minimum: 1, maximum: 100000 },
    limit_price: { type: ["number", "null"], exclusiveMinimum: 0 },
    time_in_force: { enum: ["day", "gtc", "ioc"] },
  },
  required: ["symbol", "side", "order_type", "quantity"],
  additionalProperties: false,
};

export const CALENDAR_EVENT = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 60 },
    date: { type: "string", minLength: 10, maxLength: 10, description: "YYYY-MM-DD" },
    start_minute: { type: "integer", minimum: 0, exclusiveMaximum: 1440 },
    duration_minutes: { type: "integer", minimum: 5, maximum: 480 },
    attendees: { type: "array", items: { type: "string", maxLength: 40 }, maxItems: 8 },
    recurring: { type: "boolean" },
  },
  required: ["title", "date", "start_minute", "duration_minutes"],
};

export const REASONING = {
  type: "object",
  properties: {
    steps: {
      type: "array",
      minItems: 1,
      maxItems: 5,
      items: {
        type: "object",
        properties: {
          explanation: { type: "string" },
          output: { type: "string" },
        },
        required: ["explanation", "output"],
        additionalProperties: false,
      },
    },
    final_answer: { type: "string" },
    confidence: { type: "number", minimum: 0, maximum: 1 },
  },
  required: ["steps", "final_answer"],
  additionalProperties: false,
};

export const PORTFOLIO = {
  type: "object",
  $defs: {
    money: { type: "number", minimum: -1e9, maximum: 1e9 },
    position: {
      type: "object",
      properties: {
        ticker: { type: "string", minLength: 1, maxLength: 6 },
        shares: { type: "integer", minimum: -1000000, maximum: 1000000 },
        cost_basis: { $ref: "#/$defs/money" },
        weight: { type: "number", minimum: 0, maximum: 1 },
        side: { anyOf: [{ const: "LONG" }, { const: "SHORT" }] },
      },
      required: ["ticker", "shares", "weight"],
    },
  },
  properties: {
    owner: { type: "string" },
    cash: { $ref: "#/$defs/money" },
    accounts: {
      type: "array",
      maxItems: 3,
      items: {
        type: "object",
        properties: {
          name: { type: "string", maxLength: 20 },
          currency: { enum: ["USD", "EUR", "JPY", "CHF"] },
          positions: { type: "array", items: { $ref: "#/$defs/position" }, maxItems: 4 },
        },
        required: ["name", "currency", "positions"],
      },
    },
  },
  required: ["owner", "cash", "accounts"],
};
