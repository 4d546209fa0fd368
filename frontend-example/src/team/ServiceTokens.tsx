import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { TeamServiceTokensDocument } from "../gql/graphql";
import { Tokens } from "./Tokens";

/** The team's service tokens, which flow runners use; only ADMINs see and manage them. */
export function ServiceTokens({ teamId }: { teamId: string }) {
  const [{ data, error }, reexecute] = useQuery({ query: TeamServiceTokensDocument, variables: { teamId } });
  if (error) return <ErrorText message={errorMessage(error)} />;
  return (
    <Tokens
      title="Service tokens"
      tokens={data?.team?.serviceTokens ?? []}
      input={{ kind: "SERVICE", teamId }}
      onChanged={() => reexecute({ requestPolicy: "network-only" })}
    />
  );
}
