CREATE TABLE "generations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	"request_id" text,
	"model" text NOT NULL,
	"node_model" text NOT NULL,
	"messages" jsonb NOT NULL,
	"response_format" jsonb,
	"params" jsonb NOT NULL,
	"output" text NOT NULL,
	"finish_reason" text NOT NULL,
	"prompt_tokens" integer NOT NULL,
	"completion_tokens" integer NOT NULL,
	"stream" boolean NOT NULL,
	"timings" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "generations_created_at_idx" ON "generations" USING btree ("created_at","id");