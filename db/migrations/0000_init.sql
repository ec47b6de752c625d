CREATE TABLE "feedback_items" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"transaction_id" uuid NOT NULL,
	"feedback_type" text NOT NULL,
	"feedback_content" jsonb NOT NULL,
	"timestamp" timestamp (3) with time zone NOT NULL,
	"corrected_proposal" jsonb,
	"received_at" timestamp (3) with time zone NOT NULL,
	"request_id" text,
	"example_ticker" text,
	"example_prompt" text,
	"example_tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('simple', coalesce("example_prompt", ''))) STORED
);
--> statement-breakpoint
CREATE TABLE "proposals" (
	"transaction_id" uuid PRIMARY KEY NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	"request_id" text,
	"endpoint" text NOT NULL,
	"prompt" text NOT NULL,
	"augmented_prompt" text NOT NULL,
	"example_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"max_length" integer NOT NULL,
	"phi3_proposal" jsonb NOT NULL,
	"phi3_model" text NOT NULL,
	"phi3_prompt_tokens" integer NOT NULL,
	"phi3_completion_tokens" integer NOT NULL,
	"hermes_assessment" text,
	"hermes_model" text,
	"hermes_prompt_tokens" integer,
	"hermes_completion_tokens" integer,
	"hermes_error" text,
	"timings" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "feedback_items" ADD CONSTRAINT "feedback_items_transaction_id_proposals_transaction_id_fk" FOREIGN KEY ("transaction_id") REFERENCES "proposals"("transaction_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "feedback_items_transaction_idx" ON "feedback_items" USING btree ("transaction_id");--> statement-breakpoint
CREATE INDEX "feedback_items_received_at_idx" ON "feedback_items" USING btree ("received_at","id");--> statement-breakpoint
CREATE INDEX "feedback_examples_ticker_idx" ON "feedback_items" USING btree ("example_ticker","received_at" DESC NULLS LAST) WHERE "feedback_items"."example_prompt" is not null;--> statement-breakpoint
CREATE INDEX "feedback_examples_recent_idx" ON "feedback_items" USING btree ("received_at" DESC NULLS LAST) WHERE "feedback_items"."example_prompt" is not null;--> statement-breakpoint
CREATE INDEX "proposals_created_at_idx" ON "proposals" USING btree ("created_at","transaction_id");