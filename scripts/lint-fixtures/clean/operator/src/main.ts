// Allowed: another workspace by package name; a file of its own workspace by path.
import { render } from '@veloflux/kube/render';
import { x } from './x.ts';
export const y = [render, x];
