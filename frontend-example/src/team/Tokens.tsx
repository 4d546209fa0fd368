import { useState, type FormEvent } from "react";
import { useMutation } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { type ApiTokenSummaryFragment, CreateApiTokenDocument, type CreateApiTokenInput, RevokeApiTokenDocument } from "../gql/graphql";
import { formatTime } from "../connections/format";

type Props = {
  title: string;
  tokens: ApiTokenSummaryFragment[];
  /** What a new token is: a USER token, or a SERVICE token of a team. */
  input: Omit<CreateApiTokenInput, "name" | "expiresAt">;
  onChanged: () => void;
};

/** A list of tokens with Revoke, and a form that creates one and shows its value once. */
export function Tokens({ title, tokens, input, onChanged }: Props) {
  const [, revoke] = useMutation(RevokeApiTokenDocument);
  const [, create] = useMutation(CreateApiTokenDocument);
  const [name, setName] = useState("");
  const [expiresAt, setExpiresAt] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { data, error } = await create({
      input: { ...input, name, expiresAt: expiresAt ? new Date(expiresAt).toISOString() : null },
    });
    if (error) return setProblem(errorMessage(error));
    setProblem(null);
    setName("");
    setExpiresAt("");
    setCreated(data?.createApiToken.token ?? null);
    onChanged();
  };
  const revokeToken = async (id: string) => {
    const { error } = await revoke({ id });
    setProblem(error ? errorMessage(error) : null);
    onChanged();
  };

  return (
    <div className="panel" role="region" aria-label={title}>
      <h3>{title}</h3>
      <ErrorText message={problem} />
      {created && (
        <div className="token-once" role="status">
          New token (shown only now, copy it): <code>{created}</code>
        </div>
      )}
      {tokens.length === 0 ? (
        <p className="muted">No tokens.</p>
      ) : (
        <table className="connections">
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Created</th>
              <th>Last used</th>
              <th>Expires</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((token) => (
              <tr key={token.id} aria-label={token.name}>
                <td>{token.name}</td>
                <td>
                  <code>{token.prefix}…</code>
                </td>
                <td>{formatTime(token.createdAt)}</td>
                <td>{token.lastUsedAt ? formatTime(token.lastUsedAt) : <span className="muted">never</span>}</td>
                <td>{token.expiresAt ? formatTime(token.expiresAt) : <span className="muted">never</span>}</td>
                <td>
                  <button type="button" onClick={() => revokeToken(token.id)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form aria-label={`New ${title.toLowerCase()}`} onSubmit={submit} className="filters">
        <label>
          Token name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Expires (optional)
          <input type="datetime-local" value={expiresAt} onChange={(e) => setExpiresAt(e.target.value)} />
        </label>
        <button type="submit">Create token</button>
      </form>
    </div>
  );
}
