CREATE TABLE ledger (
	id bigserial PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES accounts (id),
	amount numeric NOT NULL
);

--bun:split

CREATE INDEX ledger_account_idx ON ledger (account_id);
