// A pure module importing an I/O client.
import { KubeConfig } from '@kubernetes/client-node';
export const kc = KubeConfig;
