/**
 * Services whose capabilities later issues build: every RPC answers
 * `unimplemented` with a message naming the missing capability, instead of the
 * bare default.
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";

export function registerNotYetImplemented(router: ConnectRouter, service: DescService, capability: string): void {
  const impl: Record<string, () => never> = {};
  for (const method of service.methods) {
    impl[method.localName] = () => {
      throw new ConnectError(
        `${service.typeName}/${method.name} is not implemented yet: ${capability} is still to be built`,
        Code.Unimplemented,
      );
    };
  }
  router.service(service, impl as unknown as Partial<ServiceImpl<DescService>>);
}
